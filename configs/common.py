"""Training fields shared by every task's config: the loop reads these, the task reads `model`."""

from ml_collections import config_dict


def training_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.task = ''
  c.seed = 0
  c.steps = 200
  c.batch_size = 16  # global, across all devices and processes
  c.grad_accum = 1  # microbatches per optimizer step
  c.dtype = 'float32'  # compute dtype; parameters and optimizer state stay float32
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
