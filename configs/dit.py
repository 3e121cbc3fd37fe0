"""Diffusion Transformers (DiT) on images, trained by the same loop as the LM.

Sizes: `tiny` (about 100K parameters, for CPU) and the published shapes S, B, L and XL, each with
patch 2, 4 or 8 written as `S/2`, `B/4`, ... (`tiny` alone means `tiny/2`).

  python -m scaling.train --config=configs/dit.py:size=tiny --workdir=runs/dit-tiny
  python -m scaling.train --config=configs/dit.py:size=S/4,dataset=tfds:cifar10 --workdir=...

Arguments: `size=NAME[/PATCH]` (default tiny) and `dataset=NAME` (default digits), which also
sets the model's image_size, channels and num_classes, the data's grey levels and logsnr_max.
Any field can be overridden with --config.FIELD=VALUE.
"""

from ml_collections import config_dict

from configs import common

# name: (n_layer, d_model, n_head, lr)
SIZES = {
    'tiny': (2, 48, 4, 3e-3),  # 105K parameters
    'S': (12, 384, 6, 1e-4),  # 33M; S, B, L, XL as in Peebles & Xie 2023, Table 1
    'B': (12, 768, 12, 1e-4),  # 130M
    'L': (24, 1024, 16, 1e-4),  # 458M
    'XL': (28, 1152, 16, 1e-4),  # 675M
}
PATCHES = (2, 4, 8)

# dataset name (before any ':/path'): (image_size, channels, num_classes, grey levels, logsnr_max)
# logsnr_max puts sigma/alpha at t=0 near 1/7 of the grey-level spacing, where the ELBO's decoder
# resolves the quantisation: 13.3 for 8-bit data (as in VDM), 8 for the 17 levels of digits.
DATASETS = {
    'digits': (8, 1, 10, 17, 8.0),
    'fashion_mnist_idx': (28, 1, 10, 256, 13.3),
    'tfds:mnist': (28, 1, 10, 256, 13.3),
    'tfds:fashion_mnist': (28, 1, 10, 256, 13.3),
    'tfds:cifar10': (32, 3, 10, 256, 13.3),
}


def _dataset_shape(dataset: str) -> tuple[int, int, int, int, float]:
  key = dataset if dataset.startswith('tfds:') else dataset.split(':')[0]
  if key not in DATASETS:
    raise ValueError(f'dataset: unknown {dataset!r}; use one of {", ".join(DATASETS)}')
  return DATASETS[key]


def get_config(arg: str = 'size=tiny') -> config_dict.ConfigDict:
  args = common.parse_arg(arg, size='tiny', dataset='digits')
  name, _, patch = args['size'].partition('/')
  if name not in SIZES or patch not in ('', *map(str, PATCHES)):
    raise ValueError(f'size: unknown {args["size"]!r}; use one of {", ".join(SIZES)}, '
                     f'optionally with /2, /4 or /8')
  n_layer, d_model, n_head, lr = SIZES[name]
  dataset = args['dataset']
  image_size, channels, num_classes, levels, logsnr_max = _dataset_shape(dataset)

  c = common.training_config()
  c.task = 'diffusion'
  c.dataset = dataset
  c.size = f'{name}/{patch or 2}'
  c.lr = lr
  c.steps = 400
  c.warmup_steps = 20
  c.batch_size = 64
  c.weight_decay = 0.0  # as in DiT
  c.eval_every = 100
  c.eval_batches = 2 if dataset == 'digits' else 4  # 180 held-out digits: no image scored twice
  c.log_every = 20
  c.checkpoint_every = 200

  c.model = config_dict.ConfigDict()
  c.model.n_layer = n_layer
  c.model.d_model = d_model
  c.model.n_head = n_head
  c.model.mlp_ratio = 4
  c.model.patch = int(patch or 2)
  c.model.freq_dim = 256  # sinusoidal timestep features before the timestep MLP
  c.model.image_size = image_size
  c.model.channels = channels
  c.model.num_classes = num_classes  # 0: unconditional
  c.model.label_dropout = 0.1  # trains the null class for classifier-free guidance
  c.model.parameterization = c.get_ref('parameterization')  # sp | mup (docs/mup.md)
  c.model.attention = c.get_ref('attention')  # auto | xla | cudnn (scaling/precision.py)
  c.model.scan_layers = False  # one lax.scan over the blocks: compile time flat in depth
  c.model.remat = 'none'  # none | dots | full: recompute activations in the backward, for memory
  c.model.base_width = c.get_ref('base_width')

  c.diffusion = config_dict.ConfigDict()
  c.diffusion.schedule = 'cosine'  # cosine | linear | logsnr
  c.diffusion.target = 'eps'  # eps | v | x0
  c.diffusion.logsnr_min = -10.0
  c.diffusion.logsnr_max = logsnr_max
  c.diffusion.levels = levels  # grey levels of the data, for the ELBO's discrete decoder
  c.diffusion.eval_grid = 16  # evenly spaced log-SNR levels of the eval ELBO; divides batch_size
  c.diffusion.sampler = 'ddim'  # ddim | ddpm
  c.diffusion.sample_steps = 50
  c.diffusion.cfg_scale = 1.0  # classifier-free guidance; 1 is plain conditional sampling
  c.diffusion.n_samples = 64  # images in the sample grid written at the end of a run
  return c


CHECKS = common.CHECKS | {  # the bounds of the fields above (configs/common.py)
    'model.n_layer': 'count', 'model.d_model': 'count', 'model.n_head': 'count',
    'model.mlp_ratio': 'count', 'model.patch': 'count', 'model.freq_dim': 'count',
    'model.image_size': 'count', 'model.channels': 'count', 'model.num_classes': 'non_negative',
    'model.label_dropout': 'unit_open', 'diffusion.eval_grid': 'count',
    'diffusion.sample_steps': 'count', 'diffusion.n_samples': 'count',
}
