"""Training fields shared by every task's config: the loop reads these, the task reads `model`.
Also the one parser of the `:ARG` after a config or sweep file (`configs/lm.py:size=small`).

Each config module declares beside its fields the bound each numeric one must keep, in `CHECKS`
(field: rule; the rules are scaling/checks.py's RULES). scaling.checks refuses, when it is
imported, a CHECKS entry that names a field the config lacks, so a mistyped name cannot check
nothing. Every float field must also be finite, whether or not CHECKS names it.
"""

from ml_collections import config_dict


def parse_arg(arg: str, **defaults) -> dict:
  """`key=value,key=value` as a dict of `defaults`' keys, each typed like its default.

  An unknown key, a bare word (`nano` for `size=nano`) or a value of the wrong type raises a
  ValueError that names the key and lists the known ones: a typo never silently means a default.
  """
  known = ', '.join(f'{k}=' for k in defaults) or 'none'
  values = dict(defaults)
  for item in (arg or '').split(','):
    if not item.strip():
      continue
    key, sep, text = item.partition('=')
    key = key.strip()
    if not sep:
      raise ValueError(f'{item!r} is not KEY=VALUE; the arguments are {known} '
                       f'(e.g. {next(iter(defaults), "key")}={item})')
    if key not in defaults:
      raise ValueError(f'unknown argument {key!r}; the arguments are {known}')
    kind = type(defaults[key])
    if kind is bool:
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(f'{key}: {text!r} is not true or false')
      values[key] = text.lower() in ('true', '1')
      continue
    try:
      values[key] = kind(text)
    except ValueError:
      raise ValueError(f'{key}: {text!r} is not {"an" if kind is int else "a"} '
                       f'{kind.__name__}') from None
  return values


def training_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.task = ''
  c.seed = 0
  c.steps = 200
  c.budget = 0.0  # the IsoFLOP budget (FLOPs) a sweep sized this run for; 0: none (runspec sets it)
  c.batch_size = 16  # global, across all devices and processes
  c.grad_accum = 1  # microbatches per optimizer step
  # Log the gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al. 2018, App. A) and its two
  # parts in metrics.jsonl, from the gradients of the microbatches under grad_accum > 1, else of
  # each data shard (mesh.data x mesh.fsdp > 1); a step with neither is refused. docs/run-format.md
  c.log_grad_noise_scale = False
  # Compute dtype: auto is bfloat16 on GPU/TPU, float32 on CPU (scaling/precision.py); parameters
  # and optimizer state stay float32. attention: auto | xla | cudnn (cuDNN's fused kernel, GPU) |
  # blocked (causal attention by query blocks, the LM's CPU default).
  c.dtype = 'auto'
  c.attention = 'auto'
  c.dataset = ''
  c.data_dir = ''  # for tfds: datasets; empty means TFDS_DATA_DIR or ~/tensorflow_datasets

  c.lr = 3e-3
  c.schedule = 'cosine'  # cosine | constant | wsd
  c.warmup_steps = 20
  c.min_lr_ratio = 0.1  # cosine and wsd decay to lr * min_lr_ratio
  c.cooldown_fraction = 0.2  # wsd: last fraction of steps spent cooling down
  c.cooldown_shape = 'linear'  # wsd: linear | sqrt | cosine
  c.weight_decay = 0.1
  c.b1 = 0.9
  c.b2 = 0.95
  c.grad_clip = 1.0
  # sp | mup (docs/mup.md). Under mup, base_width is the d_model at which lr was tuned and must
  # divide model.d_model; the task configs pass both to the model as model.parameterization
  # and model.base_width (references: override these two, not the model's).
  c.parameterization = 'sp'
  c.base_width = 0

  c.log_every = 10
  c.eval_every = 50
  c.eval_batches = 4
  c.checkpoint_every = 100
  c.keep_checkpoints = 2
  c.init_from = ''  # a run directory to fork from (WSD cooldown branches); its steps count as ours
  c.init_step = 0  # the checkpoint step of init_from to start at
  c.peak_flops = 0.0  # per-device peak FLOP/s for MFU; 0 means look up or measure

  c.mesh = config_dict.ConfigDict(dict(data=1, fsdp=-1, tensor=1))  # -1: the remaining devices
  return c


# The bounds of training_config's fields (count: an integer >= 1; non_negative: >= 0; positive:
# > 0; unit_closed: in [0, 1]; unit_open: in [0, 1)). Counts of 0 divide by zero, loop forever,
# evaluate nothing or keep no checkpoint.
CHECKS = {
    'steps': 'count', 'budget': 'non_negative', 'batch_size': 'count', 'grad_accum': 'count',
    'lr': 'positive', 'warmup_steps': 'non_negative', 'min_lr_ratio': 'unit_closed',
    'cooldown_fraction': 'unit_closed', 'weight_decay': 'non_negative', 'b1': 'unit_open',
    'b2': 'unit_open', 'grad_clip': 'non_negative', 'base_width': 'non_negative',
    'log_every': 'count', 'eval_every': 'count', 'eval_batches': 'count',
    'checkpoint_every': 'count', 'keep_checkpoints': 'count', 'init_step': 'non_negative',
    'peak_flops': 'non_negative',
}
