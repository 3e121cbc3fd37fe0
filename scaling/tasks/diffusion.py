"""Image diffusion: a DiT trained on the noise-prediction loss, scored by the ELBO in bits/dim."""

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from ml_collections import config_dict

from scaling import diffusion, dit_flops, precision, stderr
from scaling.data import images, spec
from scaling.errors import ConfigError
from scaling.models.dit import DiT, check_shape

DATA = 'images'  # the family of datasets this task reads (scaling.data.spec)
SHAPE_FIELDS = ('n_layer', 'd_model', 'n_head', 'mlp_ratio', 'patch', 'image_size', 'channels',
                'num_classes')
PROCESS_FIELDS = tuple(f.name for f in dataclasses.fields(diffusion.Process))


class Denoiser(nnx.Module):
  """The DiT plus its fixed noise process, so that loss and eval need only the module."""

  def __init__(self, c: config_dict.ConfigDict, rngs: nnx.Rngs):
    self.net = DiT(c.model, dtype=jnp.dtype(precision.compute_dtype(c.dtype)), rngs=rngs)
    self.process = process(c)
    self.eval_grid = c.diffusion.eval_grid


def process(c: config_dict.ConfigDict) -> diffusion.Process:
  return diffusion.Process(**{f: c.diffusion[f] for f in PROCESS_FIELDS})


def check_config(c: config_dict.ConfigDict) -> None:
  check_shape(c.model)
  diffusion.check(process(c))
  diffusion.check_sampler(c.diffusion.sampler)
  if c.batch_size % c.diffusion.eval_grid:
    raise ConfigError(f'diffusion.eval_grid: {c.diffusion.eval_grid} does not divide batch_size='
                      f'{c.batch_size}; every eval batch must hold each log-SNR level equally')


def make_model(c: config_dict.ConfigDict, rngs: nnx.Rngs) -> Denoiser:
  return Denoiser(c, rngs)


def _check_matches(c: config_dict.ConfigDict, data: images.ImageData) -> None:
  m = c.model
  H, W, C = data.image_shape
  if (H, W, C) != (m.image_size, m.image_size, m.channels):
    raise ConfigError(f'model.image_size: {c.dataset} has {H}x{W}x{C} images, the model expects '
                      f'{m.image_size}x{m.image_size}x{m.channels}; set model.image_size and '
                      'model.channels (or pass dataset= in the config argument)')
  if m.num_classes and m.num_classes < data.num_classes:
    raise ConfigError(f'model.num_classes: {m.num_classes} but {c.dataset} has {data.num_classes} '
                      'labels; set it to that, or 0 for an unconditional model')
  if c.diffusion.levels != data.levels:
    raise ConfigError(f'diffusion.levels: {c.diffusion.levels} but {c.dataset} has {data.levels} '
                      'grey levels; set it to match')


def make_data(c: config_dict.ConfigDict, process_index: int,
              process_count: int) -> images.ImageData:
  splits, levels = images.load(spec.parse(c.dataset, family=DATA), c.data_dir or None)
  data = images.ImageData(c.dataset, splits, levels, batch_size=c.batch_size,
                          n_eval_batches=c.eval_batches, eval_grid=c.diffusion.eval_grid,
                          seed=c.seed, process_index=process_index, process_count=process_count)
  _check_matches(c, data)
  return data


def _labels(model: Denoiser, batch: dict) -> jax.Array | None:
  return batch['label'] if model.net.cond.num_classes else None


def loss_fn(model: Denoiser, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
  noise_key, drop_key = jax.random.split(rng)
  apply = lambda z, t, label: model.net(z, t, label, drop_key=drop_key)
  return diffusion.loss(apply, batch['image'], _labels(model, batch), noise_key, model.process), {}


def eval_fn(model: Denoiser, batch: dict) -> dict[str, jax.Array]:
  """The ELBO (conditional on the label when the model has classes) and per-node MSE.

  Example j sits at the jittered node u_{j mod G} of `diffusion.eval_nodes(G)`, G = eval_grid,
  so every mean here is an unbiased estimate, and its moments are stratified by node.
  """
  x, level_B = batch['image'], batch['u_index']
  u_B = jnp.asarray(diffusion.eval_nodes(model.eval_grid))[level_B]
  terms = diffusion.elbo_terms(model.net, x, _labels(model, batch), u_B, batch['eps'],
                               model.process)
  bpd_B = diffusion.bits_per_dim(terms, math.prod(x.shape[1:]))
  moments = lambda v_B: stderr.moments(v_B, level_B, model.eval_grid)
  return {'eval_loss': terms['loss'].mean(), 'eval_loss_moments': moments(terms['loss']),
          'eval_elbo_bpd': bpd_B.mean(), 'eval_elbo_bpd_moments': moments(bpd_B),
          'eval_mse': moments(terms['mse'])[0]}


def describe(c: config_dict.ConfigDict) -> dict:
  counts = dit_flops.dit_param_counts(c.model)
  u_G = diffusion.eval_nodes(c.diffusion.eval_grid)  # where eval_mse is measured
  return {
      'model': {k: c.model[k] for k in SHAPE_FIELDS},
      'n_params': counts['total'],
      'n_params_nonembedding': counts['nonembedding'],
      'flops_per_token': dit_flops.dit_train_flops_per_token(c.model),
      'tokens_per_step': c.batch_size * dit_flops.n_tokens(c.model),
      'eval_logsnr_grid': np.asarray(diffusion.grid_logsnr(u_G, process(c))).tolist(),
  }


def samples(model: Denoiser, c: config_dict.ConfigDict, seed: int = 0) -> np.ndarray:
  """c.diffusion.n_samples images in [-1, 1]; labels cycle through the classes."""
  m, d = c.model, c.diffusion
  graphdef, state = nnx.split(model.net)
  key_noise, key_draws = jax.random.split(jax.random.key(seed))
  noise = diffusion.normal(key_noise, (d.n_samples, m.image_size, m.image_size, m.channels))
  label = jnp.arange(d.n_samples) % m.num_classes if m.num_classes else None
  run = jax.jit(lambda state, noise, label: diffusion.sample(
      nnx.merge(graphdef, state), noise, label, model.process, steps=d.sample_steps,
      method=d.sampler, cfg_scale=d.cfg_scale, key=key_draws))
  return np.asarray(run(state, noise, label))


def write_grid(path: str, images_NxHxWxC: np.ndarray) -> None:
  """Tiles the images edge to edge, ceil(sqrt(N)) to a row, as a PNG of intensities in [0, 1]."""
  from matplotlib import image  # only when a grid is written
  N, H, W, C = images_NxHxWxC.shape
  cols = math.ceil(math.sqrt(N))
  rows = math.ceil(N / cols)
  tiles = np.zeros((rows * cols, H, W, C), np.float32)
  tiles[:N] = (images_NxHxWxC + 1) / 2
  grid = tiles.reshape(rows, cols, H, W, C).transpose(0, 2, 1, 3, 4).reshape(rows * H, cols * W, C)
  image.imsave(path, grid[..., 0] if C == 1 else grid, cmap='gray', vmin=0.0, vmax=1.0)


def finish(model: Denoiser, c: config_dict.ConfigDict, workdir: str) -> None:
  images_NxHxWxC = samples(model, c)  # every process takes part in the sharded computation
  if jax.process_index() == 0:
    write_grid(os.path.join(workdir, 'samples.png'), images_NxHxWxC)
