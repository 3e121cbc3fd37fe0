"""Variance-preserving Gaussian diffusion in continuous time t in [0, 1], indexed by log-SNR.

z_t = alpha_t x + sigma_t eps with alpha^2 = sigmoid(logsnr) and sigma^2 = sigmoid(-logsnr).
Every schedule runs from logsnr_max at t=0 to logsnr_min at t=1, so the ELBO's prior and
reconstruction terms depend only on those two endpoints. The model is any function
apply(z_BxHxWxC, t_B, label_B or None) -> prediction of `target`; label None is the null class.
"""

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from scaling.errors import ConfigError

SCHEDULES = ('cosine', 'linear', 'logsnr')
TARGETS = ('eps', 'v', 'x0')
SAMPLERS = ('ddpm', 'ddim')
BETA_MIN, BETA_MAX = 0.1, 20.0  # DDPM's linear betas 1e-4..0.02 over 1000 steps, per unit time
EVAL_NODE_SEED = 20241  # the eval ELBO's node jitter: fixed, so every run and eval share its nodes

Apply = Callable[[jax.Array, jax.Array, jax.Array | None], jax.Array]


@dataclasses.dataclass(frozen=True)
class Process:
  """The fixed forward process and what the network predicts (hashable: static under jit)."""
  schedule: str = 'cosine'
  target: str = 'eps'
  logsnr_min: float = -10.0
  logsnr_max: float = 13.0
  levels: int = 256  # data take `levels` evenly spaced values in [-1, 1]


def check(p: Process) -> None:
  if p.schedule not in SCHEDULES:
    raise ConfigError(f'diffusion.schedule: unknown {p.schedule!r}; '
                      f'use one of {", ".join(SCHEDULES)}')
  if p.target not in TARGETS:
    raise ConfigError(f'diffusion.target: unknown {p.target!r}; use one of {", ".join(TARGETS)}')
  if not p.logsnr_min < p.logsnr_max:
    raise ConfigError(f'diffusion.logsnr_min: {p.logsnr_min} must be below '
                      f'diffusion.logsnr_max={p.logsnr_max}')
  if p.levels < 2:
    raise ConfigError(f'diffusion.levels: {p.levels} must be at least 2 (the data quantisation)')


def check_sampler(method: str) -> None:
  if method not in SAMPLERS:
    raise ConfigError(f'diffusion.sampler: unknown {method!r}; use one of {", ".join(SAMPLERS)}')


def _linear_time(logsnr_value):
  """Time at which DDPM's linear-beta schedule reaches `logsnr_value` (root of a quadratic)."""
  integral = jax.nn.softplus(-logsnr_value)  # -log(alpha^2) = int_0^s beta
  slope = BETA_MAX - BETA_MIN
  return (-BETA_MIN + jnp.sqrt(BETA_MIN**2 + 2 * slope * integral)) / slope


def eval_nodes(grid: int, seed: int = EVAL_NODE_SEED) -> np.ndarray:
  """Stratified jittered nodes u_i = (i + U_i) / grid, U_i ~ U(0, 1) drawn from `seed`.

  Each node is uniform on its stratum, so the mean of an integrand over the nodes is an unbiased
  estimate of its integral over [0, 1], unlike a fixed midpoint grid, a quadrature whose error has
  no controlled sign. A fixed seed gives every run the same nodes (common random numbers).
  """
  jitter_G = np.random.default_rng(seed).uniform(size=grid)
  return ((np.arange(grid) + jitter_G) / grid).astype(np.float32)


def grid_logsnr(u: jax.Array, p: Process) -> jax.Array:
  """Evenly spaced in log-SNR: u=0 at logsnr_max, u=1 at logsnr_min."""
  return p.logsnr_max + u * (p.logsnr_min - p.logsnr_max)


def _cosine_angles(p: Process) -> tuple[float, float]:
  return math.atan(math.exp(-p.logsnr_max / 2)), math.atan(math.exp(-p.logsnr_min / 2))


def logsnr(t: jax.Array, p: Process) -> jax.Array:
  if p.schedule == 'logsnr':
    return grid_logsnr(t, p)
  if p.schedule == 'cosine':  # alpha_t = cos(angle), truncated to the log-SNR range
    start, end = _cosine_angles(p)
    return -2 * jnp.log(jnp.tan(start + t * (end - start)))
  s0, s1 = _linear_time(p.logsnr_max), _linear_time(p.logsnr_min)
  s = s0 + t * (s1 - s0)
  return -jnp.log(jnp.expm1(BETA_MIN * s + 0.5 * (BETA_MAX - BETA_MIN) * s**2))


def time_of(logsnr_B: jax.Array, p: Process) -> jax.Array:
  """The inverse of `logsnr`: the t at which the schedule reaches each log-SNR."""
  if p.schedule == 'logsnr':
    return (p.logsnr_max - logsnr_B) / (p.logsnr_max - p.logsnr_min)
  if p.schedule == 'cosine':
    start, end = _cosine_angles(p)
    return (jnp.arctan(jnp.exp(-logsnr_B / 2)) - start) / (end - start)
  s0, s1 = _linear_time(p.logsnr_max), _linear_time(p.logsnr_min)
  return (_linear_time(logsnr_B) - s0) / (s1 - s0)


def alpha_sigma(logsnr_B: jax.Array, like: jax.Array) -> tuple[jax.Array, jax.Array]:
  """alpha and sigma reshaped to broadcast against `like` (batch-leading)."""
  shape = (-1,) + (1,) * (like.ndim - 1)
  return (jnp.sqrt(jax.nn.sigmoid(logsnr_B)).reshape(shape),
          jnp.sqrt(jax.nn.sigmoid(-logsnr_B)).reshape(shape))


def target(x: jax.Array, eps: jax.Array, alpha: jax.Array, sigma: jax.Array,
           kind: str) -> jax.Array:
  return {'eps': eps, 'v': alpha * eps - sigma * x, 'x0': x}[kind]


def to_eps(pred: jax.Array, z: jax.Array, alpha: jax.Array, sigma: jax.Array,
           kind: str) -> jax.Array:
  if kind == 'v':
    return sigma * z + alpha * pred
  if kind == 'x0':
    return (z - alpha * pred) / sigma
  return pred


def normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  # Drawn flat and reshaped: XLA:CPU compiles multi-axis draws for seconds.
  return jax.random.normal(key, (math.prod(shape),)).reshape(shape)


def loss(apply: Apply, x: jax.Array, label: jax.Array | None, key: jax.Array,
         p: Process) -> jax.Array:
  """Unweighted mean squared error of the prediction target at t ~ U(0, 1)."""
  t_key, eps_key = jax.random.split(key)
  t_B = jax.random.uniform(t_key, x.shape[:1])
  eps = normal(eps_key, x.shape)
  alpha, sigma = alpha_sigma(logsnr(t_B, p), x)
  pred = apply(alpha * x + sigma * eps, t_B, label)
  return jnp.mean(jnp.square(pred.astype(jnp.float32) - target(x, eps, alpha, sigma, p.target)))


def _sum_dims(a: jax.Array) -> jax.Array:
  return a.reshape(a.shape[0], -1).sum(axis=1)


def prior_kl(x: jax.Array, p: Process) -> jax.Array:
  """KL(q(z_1 | x) || N(0, I)) per example, nats."""
  alpha2 = jax.nn.sigmoid(p.logsnr_min)
  return _sum_dims(0.5 * (alpha2 * (x * x - 1) - jax.nn.log_sigmoid(-p.logsnr_min)))


def recon_nll(x: jax.Array, eps: jax.Array, p: Process) -> jax.Array:
  """-log p(x | z_0) per example, nats: each dim picks a level by its Gaussian likelihood."""
  levels_K = jnp.linspace(-1.0, 1.0, p.levels)
  y = x + jnp.exp(-p.logsnr_max / 2) * eps  # z_0 / alpha_0
  logits = -0.5 * jnp.exp(p.logsnr_max) * jnp.square(y[..., None] - levels_K)
  index = jnp.round((x + 1) / 2 * (p.levels - 1)).astype(jnp.int32)
  picked = jnp.take_along_axis(logits, index[..., None], axis=-1)[..., 0]
  return _sum_dims(jax.nn.logsumexp(logits, axis=-1) - picked)


def elbo_terms(apply: Apply, x: jax.Array, label: jax.Array | None, u_B: jax.Array,
               eps: jax.Array, p: Process) -> dict[str, jax.Array]:
  """Per-example terms of the continuous-time bound (Kingma et al. 2021), nats, and the loss.

  The diffusion term is 0.5 * int E||eps - eps_hat||^2 dlogsnr over [logsnr_min, logsnr_max]
  whatever the schedule, so it is integrated in log-SNR: u_B in [0, 1] are positions along the
  log-SNR range (`grid_logsnr`), and the network sees the time at which its schedule reaches that
  log-SNR. With u uniform (e.g. `eval_nodes`) each term is an unbiased estimate of the bound's.
  'loss' estimates the training loss, whose t ~ U(0, 1) has density |dt/dlogsnr| in log-SNR.
  """
  logsnr_B = grid_logsnr(u_B, p)
  t_B, dt_dlogsnr_B = jax.jvp(lambda l: time_of(l, p), (logsnr_B,), (jnp.ones_like(logsnr_B),))
  alpha, sigma = alpha_sigma(logsnr_B, x)
  z = alpha * x + sigma * eps
  pred = apply(z, t_B, label).astype(jnp.float32)
  sq_B = _sum_dims(jnp.square(eps - to_eps(pred, z, alpha, sigma, p.target)))
  target_sq_B = _sum_dims(jnp.square(pred - target(x, eps, alpha, sigma, p.target)))
  dims, span = math.prod(x.shape[1:]), p.logsnr_max - p.logsnr_min
  return {'prior': prior_kl(x, p), 'recon': recon_nll(x, eps, p), 'diffusion': 0.5 * span * sq_B,
          'mse': sq_B / dims, 'loss': -dt_dlogsnr_B * span * target_sq_B / dims}


def bits_per_dim(terms: dict[str, jax.Array], dims: int) -> jax.Array:
  return (terms['prior'] + terms['recon'] + terms['diffusion']) / (dims * math.log(2))


def guided_eps(apply: Apply, z: jax.Array, t_B: jax.Array, label: jax.Array | None,
               cfg_scale: float, p: Process) -> jax.Array:
  """eps_uncond + cfg_scale * (eps_cond - eps_uncond); cfg_scale 1 is plain conditioning."""
  alpha, sigma = alpha_sigma(logsnr(t_B, p), z)
  eps = to_eps(apply(z, t_B, label).astype(jnp.float32), z, alpha, sigma, p.target)
  if label is None or cfg_scale == 1.0:
    return eps
  eps_null = to_eps(apply(z, t_B, None).astype(jnp.float32), z, alpha, sigma, p.target)
  return eps_null + cfg_scale * (eps - eps_null)


def _step(apply: Apply, z: jax.Array, t: jax.Array, s: jax.Array, label, noise: jax.Array,
          p: Process, method: str, cfg_scale: float) -> jax.Array:
  """z_t -> z_s (s < t): DDIM's deterministic update, or DDPM's draw from q(z_s | z_t, x_hat)."""
  t_B, s_B = jnp.full(z.shape[:1], t), jnp.full(z.shape[:1], s)
  logsnr_t, logsnr_s = logsnr(t_B, p), logsnr(s_B, p)
  alpha_t, sigma_t = alpha_sigma(logsnr_t, z)
  alpha_s, sigma_s = alpha_sigma(logsnr_s, z)
  eps = guided_eps(apply, z, t_B, label, cfg_scale, p)
  x_hat = jnp.clip((z - sigma_t * eps) / alpha_t, -1.0, 1.0)
  if method == 'ddim':
    return alpha_s * x_hat + sigma_s * (z - alpha_t * x_hat) / sigma_t
  c = -jnp.expm1(logsnr_t - logsnr_s).reshape(alpha_t.shape)  # sigma_{t|s}^2 / sigma_t^2
  return alpha_s * ((1 - c) / alpha_t * z + c * x_hat) + sigma_s * jnp.sqrt(c) * noise


def sample(apply: Apply, noise: jax.Array, label: jax.Array | None, p: Process, *, steps: int,
           method: str, cfg_scale: float = 1.0, key: jax.Array | None = None) -> jax.Array:
  """Images in [-1, 1] from z_1 = noise in `steps` equal steps of t; `key` drives DDPM's draws."""
  check_sampler(method)
  key = jax.random.key(0) if key is None else key

  def body(i, z):
    t, s = (steps - i) / steps, (steps - i - 1) / steps
    draw = normal(jax.random.fold_in(key, i), z.shape)
    return _step(apply, z, t, s, label, draw, p, method, cfg_scale)

  z = jax.lax.fori_loop(0, steps, body, noise)
  alpha0, _ = alpha_sigma(jnp.full(z.shape[:1], p.logsnr_max), z)
  return jnp.clip(z / alpha0, -1.0, 1.0)
