"""Small sweep files for the launcher tests: nano LMs at seq_len 32 that train in seconds."""

import textwrap

FAST = {'seq_len': 32, 'eval_batches': 1, 'log_every': 5, 'warmup_steps': 2, 'peak_flops': 1e9}


def write_sweep(tmp_path, runs: list[dict], name: str = 'test') -> str:
  path = tmp_path / f'{name}.py'
  path.write_text(textwrap.dedent(f'''
      def get_sweep():
        return {{'name': {name!r}, 'runs': {runs!r}}}
      '''))
  return str(path)


def nano(name: str, **spec) -> dict:
  overrides = {**FAST, **spec.pop('overrides', {})}
  return {'name': name, 'config': 'configs/lm.py:size=nano', 'overrides': overrides, **spec}


def wsd(trunk_steps: int, keep: int, forks: tuple[int, ...], cooldown: int = 5) -> list[dict]:
  """A constant-LR nano trunk checkpointing every 10 steps, and a cooldown branch per fork step."""
  trunk = nano('trunk', overrides={'steps': trunk_steps, 'schedule': 'constant',
                                   'checkpoint_every': 10, 'keep_checkpoints': keep})
  return [trunk] + [nano(f'cool{s}', fork={'trunk': 'trunk', 'step': s}, overrides={
      'steps': s + cooldown, 'schedule': 'wsd', 'cooldown_fraction': cooldown / (s + cooldown)})
                    for s in forks]
