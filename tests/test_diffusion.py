"""Diffusion maths against closed forms: Gaussian data with its exact optimal denoiser."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from scaling import diffusion
from scaling.errors import ConfigError

MU, STD = 0.1, 0.4  # the Gaussian that the analytic cases draw from
NARROW = 0.25  # for samplers: [-1, 1] clipping touches 2e-4 of N(MU, NARROW^2)


def gaussian_apply(p: diffusion.Process, mu=MU, std=STD):
  """Exact E[eps | z_t] for x ~ N(mu, std^2) per dim, returned as the prediction of p.target."""
  def apply(z, t_B, label):
    del label
    alpha, sigma = diffusion.alpha_sigma(diffusion.logsnr(t_B, p), z)
    x_hat = mu + alpha * std**2 / (alpha**2 * std**2 + sigma**2) * (z - alpha * mu)
    return from_x_hat(x_hat, z, alpha, sigma, p.target)
  return apply


def discrete_gaussian(levels: int, mu=MU, std=STD) -> tuple[np.ndarray, np.ndarray]:
  """(values_K, probs_K): N(mu, std^2) binned onto `levels` evenly spaced values in [-1, 1]."""
  values_K = np.linspace(-1, 1, levels)
  edges = np.concatenate([[-np.inf], (values_K[1:] + values_K[:-1]) / 2, [np.inf]])
  return values_K, np.diff(stats.norm.cdf(edges, mu, std))


def mixture_apply(p: diffusion.Process, values_K, probs_K):
  """Exact E[eps | z_t] when each dim takes values_K[k] with probability probs_K[k]."""
  def apply(z, t_B, label):
    del label
    alpha, sigma = diffusion.alpha_sigma(diffusion.logsnr(t_B, p), z)
    gap_BxHxWxCxK = (z[..., None] - alpha[..., None] * values_K) / sigma[..., None]
    log_w = jnp.log(probs_K + 1e-300) - 0.5 * jnp.square(gap_BxHxWxCxK)
    x_hat = jnp.sum(jax.nn.softmax(log_w, axis=-1) * values_K, axis=-1)
    return from_x_hat(x_hat, z, alpha, sigma, p.target)
  return apply


def from_x_hat(x_hat, z, alpha, sigma, kind):
  eps_hat = (z - alpha * x_hat) / sigma
  return diffusion.target(x_hat, eps_hat, alpha, sigma, kind)


def stratified_grid(n_rows: int, n_t: int) -> jnp.ndarray:
  return jnp.asarray((np.arange(n_rows) % n_t + 0.5) / n_t, jnp.float32)


@pytest.mark.parametrize('schedule', diffusion.SCHEDULES)
def test_schedules_run_from_logsnr_max_to_min_monotonically(schedule):
  p = diffusion.Process(schedule=schedule, logsnr_min=-9.0, logsnr_max=12.0)
  logsnr_T = np.asarray(diffusion.logsnr(jnp.linspace(0.0, 1.0, 101), p))
  np.testing.assert_allclose([logsnr_T[0], logsnr_T[-1]], [12.0, -9.0], atol=1e-3)
  assert np.all(np.diff(logsnr_T) < 0)


def test_cosine_schedule_is_alpha_cos_half_pi_t_when_untruncated():
  p = diffusion.Process(schedule='cosine', logsnr_min=-30.0, logsnr_max=30.0)
  t_T = jnp.linspace(0.05, 0.95, 19)
  alpha, _ = diffusion.alpha_sigma(diffusion.logsnr(t_T, p), t_T)
  np.testing.assert_allclose(alpha, np.cos(np.pi / 2 * np.asarray(t_T)), atol=1e-5)


def test_linear_schedule_matches_ddpm_discrete_alphas_cumprod():
  betas = np.linspace(1e-4, 0.02, 1000)  # Ho et al. 2020
  log_alpha2 = np.cumsum(np.log1p(-betas))
  p = diffusion.Process(schedule='linear', logsnr_min=-11.0, logsnr_max=13.0)
  s0, s1 = float(diffusion._linear_time(13.0)), float(diffusion._linear_time(-11.0))
  steps = np.array([50, 200, 500, 900])
  t = ((steps - 0.5) / 1000 - s0) / (s1 - s0)  # the sum over steps 1..i is the integral to i - 1/2
  ours = np.log(jax.nn.sigmoid(diffusion.logsnr(jnp.asarray(t, jnp.float32), p)))
  np.testing.assert_allclose(ours, log_alpha2[steps - 1], rtol=0.01)


@pytest.mark.parametrize('schedule', diffusion.SCHEDULES)
def test_time_of_inverts_the_schedule(schedule):
  p = diffusion.Process(schedule=schedule)
  t_T = jnp.linspace(0.0, 1.0, 41)
  np.testing.assert_allclose(diffusion.time_of(diffusion.logsnr(t_T, p), p), t_T, atol=1e-4)


@pytest.mark.parametrize('kind', diffusion.TARGETS)
def test_every_target_converts_back_to_the_noise(kind):
  x, eps = jax.random.normal(jax.random.key(0), (2, 4, 3, 3, 1))
  alpha, sigma = diffusion.alpha_sigma(jnp.array([-2.0, 0.5, 3.0, 6.0]), x)
  z = alpha * x + sigma * eps
  eps_back = diffusion.to_eps(diffusion.target(x, eps, alpha, sigma, kind), z, alpha, sigma, kind)
  np.testing.assert_allclose(eps_back, eps, atol=2e-4)


@pytest.mark.parametrize('field,value', [('schedule', 'sigmoid'), ('target', 'score'),
                                         ('logsnr_min', 20.0)])
def test_bad_process_is_a_one_line_config_error(field, value):
  with pytest.raises(ConfigError, match=f'diffusion.{field}') as e:
    diffusion.check(diffusion.Process(**{field: value}))
  assert '\n' not in str(e.value)


def test_recon_nll_hand_worked():
  # Levels {-1, 1}, logsnr_0 = 0, no noise: logits 0 and -0.5 * 1 * 2^2 = -2, so log(1 + e^-2).
  p = diffusion.Process(levels=2, logsnr_max=0.0, logsnr_min=-5.0)
  nll = diffusion.recon_nll(jnp.ones((1, 1)), jnp.zeros((1, 1)), p)
  np.testing.assert_allclose(nll, [math.log(1 + math.exp(-2))], rtol=1e-6)


def test_prior_kl_is_the_gaussian_kl():
  p = diffusion.Process(logsnr_min=-3.0)
  x = np.array([[-1.0, 0.25, 1.0]])
  a2 = 1 / (1 + math.exp(3.0))
  # KL(N(m, v) || N(0, 1)) = (v + m^2 - 1 - log v) / 2
  expected = sum(0.5 * ((1 - a2) + a2 * xi**2 - 1 - math.log(1 - a2)) for xi in x[0])
  np.testing.assert_allclose(diffusion.prior_kl(jnp.asarray(x), p), [expected], rtol=1e-5)


@pytest.mark.parametrize('schedule,kind', [('cosine', 'eps'), ('linear', 'v'), ('logsnr', 'x0')])
def test_diffusion_term_equals_the_mutual_information_integral(schedule, kind):
  # I-MMSE (Guo, Shamai, Verdu 2005) with the optimal denoiser on N(mu, s^2) data:
  # E[diffusion term] = 0.5 * log((1 + s^2 e^logsnr_max) / (1 + s^2 e^logsnr_min)) nats per dim.
  p = diffusion.Process(schedule=schedule, target=kind)
  x_key, eps_key = jax.random.split(jax.random.key(1))
  x = MU + STD * jax.random.normal(x_key, (1024, 8, 8, 1))
  terms = jax.jit(lambda x, u, e: diffusion.elbo_terms(gaussian_apply(p), x, None, u, e, p))(
      x, stratified_grid(1024, 64), jax.random.normal(eps_key, x.shape))
  info = lambda logsnr: 0.5 * math.log(1 + STD**2 * math.exp(logsnr))
  expected = info(p.logsnr_max) - info(p.logsnr_min)
  np.testing.assert_allclose(terms['diffusion'].mean() / 64, expected, rtol=0.01)


def test_eval_nodes_are_one_uniform_draw_per_stratum_and_fixed_by_the_seed():
  u_SxG = np.stack([diffusion.eval_nodes(16, seed) for seed in range(400)])
  strata = np.floor(u_SxG * 16)
  np.testing.assert_array_equal(strata, np.broadcast_to(np.arange(16), strata.shape))
  jitter = (u_SxG * 16 - strata).ravel()  # U(0, 1): mean 1/2, variance 1/12 (6400 draws)
  np.testing.assert_allclose([jitter.mean(), jitter.var()], [0.5, 1 / 12], atol=0.01)
  np.testing.assert_array_equal(diffusion.eval_nodes(16), diffusion.eval_nodes(16))


def test_jittered_nodes_give_an_unbiased_diffusion_term():
  # The Gaussian toy with its exact denoiser: over 200 node seeds, each with fresh x and eps, the
  # mean diffusion term matches the I-MMSE closed form to 0.2%. At 16 nodes one seed's estimate
  # spreads by 1.8% and the mean of 200 by 0.13%, so this uses 64 nodes (0.02%); x and eps add
  # 0.04%. A one-sided rule such as u_i = i / G is 1.5% off here and fails.
  p, G, seeds, per_node = diffusion.Process(), 64, 200, 2
  info = lambda logsnr: 0.5 * math.log(1 + STD**2 * math.exp(logsnr))
  expected = info(p.logsnr_max) - info(p.logsnr_min)
  term = jax.jit(lambda x, u, e: diffusion.elbo_terms(gaussian_apply(p), x, None, u, e,
                                                      p)['diffusion'].mean() / x[0].size)
  estimates = []
  for chunk in np.split(np.arange(seeds), 4):  # 50 seeds of 128 images of 32x32 at a time
    x_key, eps_key = jax.random.split(jax.random.key(int(chunk[0])))
    x = MU + STD * jax.random.normal(x_key, (len(chunk) * G * per_node, 32, 32, 1))
    u_B = np.concatenate([np.tile(diffusion.eval_nodes(G, int(seed)), per_node)
                          for seed in chunk])
    estimates.append(term(x, jnp.asarray(u_B), jax.random.normal(eps_key, x.shape)))
  np.testing.assert_allclose(np.mean(estimates), expected, rtol=0.002)


@pytest.mark.parametrize('schedule', diffusion.SCHEDULES)
def test_eval_loss_on_the_logsnr_grid_estimates_the_training_loss(schedule):
  # eps target, exact denoiser: the loss per dim at log-SNR l is s^2 e^l / (1 + s^2 e^l), and
  # training averages it over t ~ U(0, 1).
  p = diffusion.Process(schedule=schedule)
  snr_T = np.exp(np.asarray(diffusion.logsnr(jnp.asarray((np.arange(10**5) + 0.5) / 10**5), p),
                            np.float64))
  expected = np.mean(STD**2 * snr_T / (1 + STD**2 * snr_T))
  x_key, eps_key, t_key = jax.random.split(jax.random.key(6), 3)
  x = MU + STD * jax.random.normal(x_key, (1024, 8, 8, 1))
  terms = jax.jit(lambda x, u, e: diffusion.elbo_terms(gaussian_apply(p), x, None, u, e, p))(
      x, stratified_grid(1024, 64), jax.random.normal(eps_key, x.shape))
  np.testing.assert_allclose(terms['loss'].mean(), expected, rtol=0.02)
  train = jax.jit(lambda k: diffusion.loss(gaussian_apply(p), x, None, k, p))
  np.testing.assert_allclose(np.mean([train(k) for k in jax.random.split(t_key, 16)]), expected,
                             rtol=0.03)


@pytest.mark.parametrize('levels,rows', [(17, 8192), (256, 8192)])
def test_elbo_equals_the_exact_nll_of_discretised_gaussian_data(levels, rows):
  # With the exact denoiser the bound exceeds -log P(x) only by KL(q(z_1) || N(0, I)) (1e-5 bits)
  # and the decoder's mismatch at t=0 (0.036 bits/dim for 256 levels, 0 for 17); the estimator's
  # own noise at this many (x, eps) draws is about 0.3%.
  p = diffusion.Process(levels=levels)
  values_K, probs_K = discrete_gaussian(levels)
  x_key, eps_key = jax.random.split(jax.random.key(2))
  index = jax.random.choice(x_key, levels, (rows, 8, 8, 1), p=jnp.asarray(probs_K))
  x = jnp.asarray(values_K, jnp.float32)[index]
  eps, u_B = jax.random.normal(eps_key, x.shape), stratified_grid(rows, 128)
  apply = mixture_apply(p, values_K, probs_K)
  bpd = jax.jit(lambda *a: diffusion.bits_per_dim(diffusion.elbo_terms(apply, *a, p), 64))
  chunks = [bpd(x[i:i + 1024], None, u_B[i:i + 1024], eps[i:i + 1024])
            for i in range(0, rows, 1024)]
  exact_bpd = -np.log2(probs_K[np.asarray(index)]).mean()
  np.testing.assert_allclose(np.concatenate(chunks).mean(), exact_bpd, rtol=0.01)


def test_ddim_with_the_exact_denoiser_follows_the_gaussian_transport_map():
  # For N(mu, s^2) data the probability-flow ODE is the monotone affine map between marginals:
  # x = mu + s * (z_1 - alpha_1 mu) / sqrt(alpha_1^2 s^2 + sigma_1^2).
  p = diffusion.Process(schedule='cosine')
  noise = jax.random.normal(jax.random.key(3), (64, 8, 8, 1))
  x = diffusion.sample(gaussian_apply(p, std=NARROW), noise, None, p, steps=200, method='ddim')
  alpha1, sigma1 = (math.sqrt(jax.nn.sigmoid(s * p.logsnr_min)) for s in (1, -1))
  expected = MU + NARROW * (noise - alpha1 * MU) / math.sqrt(alpha1**2 * NARROW**2 + sigma1**2)
  np.testing.assert_allclose(x, np.clip(expected, -1, 1), atol=0.02)  # first order: 1.5% shrink


def test_ddpm_with_the_exact_denoiser_reproduces_the_data_moments():
  p = diffusion.Process(schedule='cosine')
  noise = jax.random.normal(jax.random.key(3), (1024, 8, 8, 1))
  x = diffusion.sample(gaussian_apply(p, std=NARROW), noise, None, p, steps=500, method='ddpm',
                       key=jax.random.key(4))
  # 65536 draws: the standard error of the mean is 0.001 and of the std 0.0007.
  np.testing.assert_allclose([x.mean(), x.std()], [MU, NARROW], atol=0.005)


def test_ddim_is_deterministic_and_ddpm_depends_on_its_key():
  p = diffusion.Process()
  noise = jax.random.normal(jax.random.key(5), (4, 4, 4, 1))
  run = lambda method, seed: diffusion.sample(gaussian_apply(p), noise, None, p, steps=10,
                                              method=method, key=jax.random.key(seed))
  np.testing.assert_array_equal(run('ddim', 0), run('ddim', 1))
  assert not np.allclose(run('ddpm', 0), run('ddpm', 1))


def test_guidance_extrapolates_from_the_null_class_prediction():
  # Conditional eps 1.0, null-class eps 0.25: scale 3 gives 0.25 + 3 * 0.75 = 2.5.
  apply = lambda z, t, label: jnp.full(z.shape, 0.25 if label is None else 1.0)
  p = diffusion.Process(target='eps')
  z, t_B, label_B = jnp.zeros((2, 2, 2, 1)), jnp.array([0.3, 0.7]), jnp.array([1, 2])
  np.testing.assert_allclose(diffusion.guided_eps(apply, z, t_B, label_B, 3.0, p), 2.5)
  np.testing.assert_allclose(diffusion.guided_eps(apply, z, t_B, None, 3.0, p), 0.25)


def test_unknown_sampler_is_a_config_error():
  with pytest.raises(ConfigError, match='diffusion.sampler'):
    diffusion.sample(gaussian_apply(diffusion.Process()), jnp.zeros((1, 2, 2, 1)), None,
                     diffusion.Process(), steps=2, method='euler')
