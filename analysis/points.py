"""The table every fit reads: one row per point with N, D, C and loss, checked before fitting.

Columns come from a CSV or from analysis.runs under any names (`--columns N=<col>,...`). When D is
absent it is C/(6N), and when C is absent it is 6ND (the replication's convention).
"""

import pathlib

import numpy as np
import pandas as pd

from analysis import errors
from analysis import laws

CANONICAL = ('N', 'D', 'C', 'loss')


def parse_columns(spec: str) -> dict[str, str]:
  """'N=Model Size,C=Training FLOP' -> {'N': 'Model Size', 'C': 'Training FLOP'}."""
  out = {}
  for item in filter(None, (s.strip() for s in spec.split(','))):
    key, sep, col = item.partition('=')
    if not sep or key.strip() not in CANONICAL or not col.strip():
      raise errors.InputError(f'bad --columns entry {item!r}: use KEY=<column> with KEY one of '
                              f'{", ".join(CANONICAL)}')
    out[key.strip()] = col.strip()
  return out


def read_csv(path: str | pathlib.Path) -> pd.DataFrame:
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.InputError(f'no CSV file at {path}: pass an existing file to --csv')
  try:
    return pd.read_csv(path)
  except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
    raise errors.InputError(f'cannot read {path} as CSV ({e}): check the file') from e


def _column(df: pd.DataFrame, key: str, columns: dict[str, str]) -> pd.Series | None:
  name = columns.get(key, key)
  if name in df.columns:
    return pd.to_numeric(df[name], errors='coerce')
  if key in columns:
    raise errors.InputError(f'column {name!r} (given for {key}) is not in the table; '
                            f'columns are: {", ".join(map(str, df.columns))}')
  return None


def canonical(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
  """N, D, C, loss under their canonical names (and `run` when present, to name points);
  derives D or C from the other two."""
  got = {k: _column(df, k, columns) for k in CANONICAL}
  for key in ('N', 'loss'):
    if got[key] is None:
      raise errors.InputError(f'missing column {key!r}: map it with --columns {key}=<column> '
                              f'(columns are: {", ".join(map(str, df.columns))})')
  if got['D'] is None and got['C'] is None:
    raise errors.InputError('need a D (tokens) or a C (FLOPs) column: map one with '
                            '--columns D=<column> or --columns C=<column>')
  if got['D'] is None:
    got['D'] = got['C'] / (6 * got['N'])
  if got['C'] is None:
    got['C'] = 6 * got['N'] * got['D']
  if 'run' in df.columns:
    got['run'] = df['run']
  return pd.DataFrame(got).reset_index(drop=True)


def check(table: pd.DataFrame, law: laws.Law) -> None:
  """One clear InputError for NaN or non-positive values, or too few points for the law."""
  for key in CANONICAL:
    bad = ~(table[key] > 0)  # NaN compares False
    if bad.any():
      rows = ', '.join(map(str, np.flatnonzero(bad)[:5]))
      raise errors.InputError(f'column {key!r} has {int(bad.sum())} NaN or non-positive values '
                              f'(rows {rows}...): fix or drop them; every value must be > 0')
  if len(table) < law.n_params:
    raise errors.InputError(f'{len(table)} points cannot fit the {law.name} law\'s {law.n_params} '
                            'parameters: add points or lower --exclude-top-loss')


def drop_top_loss(table: pd.DataFrame, k: int) -> pd.DataFrame:
  """Without the k highest-loss points (the replication drops 5)."""
  if k < 0:
    raise errors.InputError(f'--exclude-top-loss must be >= 0, got {k}')
  keep = np.argsort(table['loss'].to_numpy(), kind='stable')[:max(len(table) - k, 0)]
  return table.iloc[np.sort(keep)].reset_index(drop=True)
