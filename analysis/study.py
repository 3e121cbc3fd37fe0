"""A study: one checked table of (N, D, C, loss) points, read once from run directories or a CSV,
with what each column counts, and the law fitted to it.

  study = Study.from_runs('runs/my_sweep')            # or Study.from_csv(path, {'N': 'params'})
  result = study.fit(laws.CHINCHILLA, bootstrap=200)  # an engine.LawFit
  fitjson.law_json(study, result)                     # fit.json's content

The runs' curves and configs stay on the study (`runs`) for the approaches that need them.
Duplicated rows (analysis.points) are named in one warning and resampled as one cluster.
"""

import dataclasses
import pathlib
import warnings

import numpy as np
import pandas as pd

from analysis import engine
from analysis import errors
from analysis import laws
from analysis import points
from analysis import runs as runs_lib

RUNS_COLUMNS = {'C': 'C_chinchilla', 'loss': 'eval_loss'}  # defaults when reading runs
N_COLUMNS = {'total': 'N', 'nonembedding': 'N_nonembedding'}  # --n: the default N column
N_LABELS = {'total': 'all parameters', 'nonembedding': 'non-embedding parameters'}


def _token_unit(raw: pd.DataFrame) -> str:
  """What one token of D is: the byte tokenizer's are bytes; a DiT's, image patches."""
  tasks, names = set(raw['task']), {str(t).split(' ')[0] for t in raw['tokenizer'].dropna()}
  if tasks == {'lm'} and names == {'byte'}:
    return 'tokens (bytes: the byte-level tokenizer)'
  if tasks == {'lm'} and len(names) == 1:
    return f'tokens (of the {names.pop()} tokenizer)'
  if tasks == {'diffusion'}:
    return 'tokens (image patches)'
  return 'tokens'


def _described(table: pd.DataFrame, group: list[int]) -> str:
  if 'run' in table:
    return ' = '.join(str(r) for r in table['run'].iloc[group])
  r = table.iloc[group[0]]
  return f'{len(group)} rows of N={r.N:.6g}, D={r.D:.6g}, loss={r.loss:.6g}'


@dataclasses.dataclass
class Study:
  table: pd.DataFrame  # the canonical points (analysis.points)
  units: dict[str, str]  # what N, D, C and the loss are (fit.json's `units`)
  compute: str = 'table'  # FLOP convention of allocations: the table's own C/(N·D), or '6nd'
  runs: runs_lib.Runs | None = None  # the run directories read (None for a CSV)
  mixed: list[str] = dataclasses.field(default_factory=list)  # what the runs mix (--allow-mixed)
  duplicates: list[str] = dataclasses.field(default_factory=list)  # duplicated rows, named
  _warned: bool = dataclasses.field(default=False, repr=False)

  @classmethod
  def from_runs(cls, source: 'runs_lib.Runs | str | pathlib.Path', columns: dict | None = None, *,
                allow_mixed: bool = False, **kw) -> 'Study':
    """From a folder of run directories or runs already read; kw as `_build`."""
    loaded = source if isinstance(source, runs_lib.Runs) else runs_lib.load(source)
    raw = loaded.table
    mixed = runs_lib.mixes(raw)
    if mixed and not allow_mixed:
      raise errors.InputError(f'the runs mix {"; ".join(mixed)}: one law should not fit them; '
                              'point --runs at one study, or pass --allow-mixed if deliberate')
    return cls._build(raw, {**RUNS_COLUMNS, **(columns or {})}, _token_unit(raw), runs=loaded,
                      mixed=mixed, **kw)

  @classmethod
  def from_csv(cls, path: str | pathlib.Path, columns: dict | None = None, **kw) -> 'Study':
    return cls._build(points.read_csv(path), dict(columns or {}), 'tokens', **kw)

  @classmethod
  def _build(cls, raw: pd.DataFrame, columns: dict, unit: str, *, n: str = 'total',
             compute: str = 'table', exclude_top_loss: int = 0, **fields) -> 'Study':
    """n: 'total' or 'nonembedding' parameters; compute: 'table' or '6nd' (C replaced by 6ND)."""
    if 'N' not in columns and n != 'total':
      if N_COLUMNS[n] not in raw.columns:
        raise errors.InputError(f'--n={n} needs a {N_COLUMNS[n]} column: the table has none; map '
                                f'the count with --columns N=<column>')
      columns['N'] = N_COLUMNS[n]
    stderr_name = f'{columns.get("loss", "loss")}_stderr'
    if 'loss_stderr' not in columns and stderr_name in raw.columns:
      columns['loss_stderr'] = stderr_name
    table = points.canonical(raw, columns)
    points.check_values(table)
    table = points.drop_top_loss(table, exclude_top_loss)
    if compute == '6nd':
      table['C'] = 6 * table['N'] * table['D']
    c_column = columns.get('C', 'C') if columns.get('C', 'C') in raw.columns else None
    has_d = columns.get('D', 'D') in raw.columns or fields.get('runs') is not None
    units = {'N': f'{N_LABELS[n]} (column {columns.get("N", "N")})',
             'D': unit if has_d else f'{unit}, D = C/(6N)',
             'C': 'C = 6ND' if compute == '6nd' or not c_column else f'FLOPs (column {c_column})',
             'loss': f'column {columns.get("loss", "loss")}'}
    groups = points.duplicates(table)
    return cls(points.with_duplicates_clustered(table, groups), units, compute,
               duplicates=[_described(table, g) for g in groups], **fields)

  def check(self, law: laws.PowerSum) -> None:
    """One clear InputError when the table cannot identify the law; else one warning naming
    the duplicated rows, if any."""
    points.check(self.table, law)
    if self.duplicates and not self._warned:
      self._warned = True
      warnings.warn(f'rows duplicate one another within {points.DUPLICATE_RTOL:g} relative in N, '
                    f'D, C and loss ({"; ".join(self.duplicates)}): each copy counts in the fit, '
                    'and the bootstrap resamples each group as one cluster, not as independent '
                    'points; drop the copies if they are one run', stacklevel=2)

  def weights(self, n_resamples: int, seed: int) -> np.ndarray:
    """Bootstrap resamples (R×P counts): of points, or of whole clusters where there are any."""
    if 'cluster' in self.table:
      return engine.cluster_weights(self.table['cluster'], n_resamples, seed)
    return engine.multinomial_weights(len(self.table), n_resamples, seed)

  def fit(self, law: laws.PowerSum, bootstrap: int = 0, cold_share: float = 0.0,
          seed: int = 0) -> engine.LawFit:
    self.check(law)
    return engine.fit_law(law, self.table, self.weights(bootstrap, seed), cold_share=cold_share,
                          seed=seed)

  def fitted_range(self) -> dict[str, list[float]]:
    """The smallest and largest N, D and C fitted: what a plan extrapolates from."""
    return {k: [float(self.table[k].min()), float(self.table[k].max())] for k in ('N', 'D', 'C')}
