"""A task is a module that gives the one training loop its model, loss, data and eval.

Each task module (`lm`, `diffusion`) defines:

  DATA: str
      The family of datasets it reads, 'text' or 'images' (scaling.data.spec parses `dataset`).
  check_config(config) -> None
      Raise `scaling.errors.ConfigError('field: what is wrong; how to fix it')` for bad task fields.
  check_steps(config) -> None   (optional)
      The task's checks against the planned `steps`, run once a sweep has set them (lm: max_epochs).
  make_model(config, rngs: nnx.Rngs) -> nnx.Module
      Every nnx.Param carries logical axis names in its `out_sharding` metadata (see scaling.sharding).
  make_data(config, process_index: int, process_count: int) -> scaling.data.Data
      Deterministic, random-access data: `train_batch(step)` and `eval_batches()` return this
      process's rows of the global batch as dicts of numpy arrays (leading axis = batch).
  loss_fn(model, batch, rng) -> (loss, aux: dict)
      Mean training loss over the batch; `rng` is derived from (seed, step) by the loop.
  eval_fn(model, batch) -> dict
      Deterministic per-batch means; must contain 'eval_loss'. The loop averages over eval batches.
  describe(config) -> dict
      run.json fields: model, n_params, n_params_nonembedding, flops_per_token, tokens_per_step.
  finish(model, config, workdir) -> None
      Work done once at the end of a completed run (e.g. a sample grid).
"""

from scaling.tasks import diffusion, lm

TASKS = {'lm': lm, 'diffusion': diffusion}
