"""Decoder-only byte-level LM on the embedded corpus (the Python standard library's source).

Sizes follow Chinchilla-like shapes (d_model / n_layer from 16 to 80, head dim 16-64),
from ~25K to ~1B non-embedding parameters; `tiny` and `small` are for CPU.

  python -m scaling.train --config=configs/lm.py:size=tiny --workdir=runs/lm-tiny

Expected on 2 CPU cores (README, "Measured"): `tiny` runs its 200 steps in about 97 s and
reaches 3.08 ± 0.10 bits per byte on the held-out stdlib files.

Arguments: `size=NAME` (default tiny). Any field can be overridden with --config.FIELD=VALUE.
"""

from ml_collections import config_dict

from configs import common

# name: (n_layer, d_model, n_head, lr)
SIZES = {
    'nano': (2, 32, 2, 3e-3),  # 25K non-embedding parameters
    'micro': (2, 64, 2, 3e-3),  # 99K
    'mini': (3, 96, 3, 3e-3),  # 333K
    'tiny': (4, 128, 4, 3e-3),  # 788K
    'small': (4, 256, 4, 2e-3),  # 3.1M
    'm10': (6, 384, 6, 1.5e-3),  # 10.6M
    'm25': (8, 512, 8, 1e-3),  # 25M
    'm50': (10, 640, 10, 8e-4),  # 49M
    'm85': (12, 768, 12, 6e-4),  # 85M
    'm150': (14, 896, 14, 5e-4),  # 135M
    'm300': (24, 1024, 16, 4e-4),  # 302M
    'm600': (24, 1408, 22, 3e-4),  # 571M
    'b1': (24, 1920, 30, 2.5e-4),  # 1.06B
}


def get_config(arg: str = 'size=tiny') -> config_dict.ConfigDict:
  size = common.parse_arg(arg, size='tiny')['size']
  if size not in SIZES:
    raise ValueError(f'size: unknown {size!r}; use one of {", ".join(SIZES)}')
  n_layer, d_model, n_head, lr = SIZES[size]

  c = common.training_config()
  c.task = 'lm'
  c.dataset = 'stdlib'
  c.data_suffixes = ''  # textdir: only files ending so, comma-separated, e.g. '.txt,.md'
  # Planned tokens / tokens per epoch may not exceed this; 0: 1 for tokens:DIR datasets (real
  # corpora), no cap for the embedded byte corpora (whose sweeps repeat them, and say so).
  c.max_epochs = 0.0
  c.size = size
  c.lr = lr
  c.steps = 200
  c.warmup_steps = 20
  c.batch_size = 16
  c.seq_len = config_dict.FieldReference(128)
  c.eval_every = 40
  c.eval_batches = 4
  c.log_every = 10
  c.checkpoint_every = 100

  c.model = config_dict.ConfigDict()
  c.model.n_layer = n_layer
  c.model.d_model = d_model
  c.model.n_head = n_head
  c.model.d_ff = c.model.get_ref('d_model') * 4  # follows d_model overrides unless set itself
  c.model.vocab_size = 256
  c.model.seq_len = c.get_ref('seq_len')
  c.model.mlp = 'gelu'  # gelu | swiglu
  c.model.tied_embeddings = False
  c.model.parameterization = c.get_ref('parameterization')  # sp | mup (docs/mup.md)
  c.model.attention = c.get_ref('attention')  # auto | xla | cudnn | blocked (scaling/precision.py)
  c.model.scan_layers = False  # one lax.scan over the blocks: compile time flat in depth
  c.model.remat = 'none'  # none | dots | full: recompute activations in the backward, for memory
  c.model.base_width = c.get_ref('base_width')
  return c


CHECKS = common.CHECKS | {  # the bounds of the fields above (configs/common.py)
    'max_epochs': 'non_negative', 'seq_len': 'count', 'model.n_layer': 'count',
    'model.d_model': 'count', 'model.n_head': 'count', 'model.d_ff': 'count',
    'model.vocab_size': 'count', 'model.seq_len': 'count',
}
