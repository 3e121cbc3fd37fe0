"""The table every fit reads: one row per point with N, D, C and loss, checked before fitting.

Columns come from a CSV or from analysis.runs under any names (`--columns N=<col>,...`). When D is
absent it is C/(6N), and when C is absent it is 6ND (the replication's convention). Every numeric
column is read as float64: integer columns would make 6·N·D overflow int64 at realistic sizes.
Optional columns ride along when present: `run` (names points), `cluster` (points resampled
together by the bootstrap, e.g. the cooldown branches of one WSD trunk), `loss_stderr` (the
measurement's standard error, reported beside the fit's residuals) and `budget` (the IsoFLOP
budget a point was launched at, which Approach 2 groups by).

Duplicated rows are not independent points: rows whose N, D, C and loss all agree within
DUPLICATE_RTOL (relative) are one measurement copied (a run listed twice, a CSV row pasted again).
`with_duplicates_clustered` puts each such group in one bootstrap cluster. A seed replicate differs
in its loss by the seed noise, orders of magnitude beyond DUPLICATE_RTOL, and stays a point.
"""

import pathlib

import numpy as np
import pandas as pd

from analysis import errors
from analysis import laws

CANONICAL = ('N', 'D', 'C', 'loss')
OPTIONAL = ('loss_stderr', 'budget', 'U')  # numeric, mapped like the canonical columns; U: unique
# tokens of the corpus (analysis.data_constrained)
PASSED = ('run', 'cluster')  # labels, copied when present
DUPLICATE_RTOL = 1e-5


def parse_columns(spec: str) -> dict[str, str]:
  """'N=Model Size,C=Training FLOP' -> {'N': 'Model Size', 'C': 'Training FLOP'}."""
  out = {}
  keys = CANONICAL + OPTIONAL + PASSED
  for item in filter(None, (s.strip() for s in spec.split(','))):
    key, sep, col = item.partition('=')
    if not sep or key.strip() not in keys or not col.strip():
      raise errors.InputError(f'bad --columns entry {item!r}: use KEY=<column> with KEY one of '
                              f'{", ".join(keys)}')
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
    return pd.to_numeric(df[name], errors='coerce').astype(np.float64)
  if key in columns:
    raise errors.InputError(f'column {name!r} (given for {key}) is not in the table; '
                            f'columns are: {", ".join(map(str, df.columns))}')
  return None


def canonical(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
  """N, D, C, loss as float64 under their canonical names (and the optional columns when
  present); derives D or C from the other two."""
  got = {k: _column(df, k, columns) for k in CANONICAL}
  for key in ('N', 'loss'):
    if got[key] is None:
      raise errors.InputError(f'missing column {key!r}: map it with --columns {key}=<column> '
                              f'(columns are: {", ".join(map(str, df.columns))})')
  if got['D'] is None and got['C'] is None:
    raise errors.InputError('need a D (tokens) or a C (FLOPs) column: map one with '
                            '--columns D=<column> or --columns C=<column>')
  derived = 'D' if got['D'] is None else 'C' if got['C'] is None else None
  if got['D'] is None:
    got['D'] = got['C'] / (6 * got['N'])
  if got['C'] is None:
    got['C'] = 6 * got['N'] * got['D']
  for key in OPTIONAL:
    value = _column(df, key, columns)
    if value is not None:
      got[key] = value
  for key in PASSED:
    name = columns.get(key, key)
    if name in df.columns:
      got[key] = df[name]
    elif key in columns:
      raise errors.InputError(f'column {name!r} (given for {key}) is not in the table')
  table = pd.DataFrame(got).reset_index(drop=True)
  table.attrs['derived'] = derived
  return table


def check_values(table: pd.DataFrame) -> None:
  """One clear InputError for NaN, inf or non-positive values."""
  derived = table.attrs.get('derived')  # a derived column's bad values come from the others
  for key in sorted(CANONICAL, key=lambda k: k == derived):
    values = table[key].to_numpy(np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
      rows = ', '.join(map(str, np.flatnonzero(bad)[:5]))
      raise errors.InputError(f'column {key!r} has {int(bad.sum())} NaN, inf or non-positive '
                              f'values (rows {rows}...): fix or drop them; every value must be a '
                              'finite number > 0')


def check(table: pd.DataFrame, law: laws.PowerSum) -> None:
  """check_values, then one clear InputError for a table that cannot identify the law: fewer
  points than parameters, or too few distinct values of a variable (a term x0/x^α plus a
  constant needs 3 distinct x; without the constant, 2)."""
  check_values(table)
  if len(table) < law.n_params:
    raise errors.InputError(f'{len(table)} points cannot fit the {law.name} law\'s {law.n_params} '
                            'parameters: add points or lower --exclude-top-loss')
  distinct = len(table.drop_duplicates(list(law.variables)))
  if distinct < law.n_params:
    raise errors.InputError(f'the {len(table)} points have only {distinct} distinct value'
                            f'{"s" * (distinct != 1)} of '
                            f'({", ".join(law.variables)}); the {law.name} law has {law.n_params} '
                            'parameters: add points at other sizes or budgets')
  need = 2 + int(law.constant)
  for v in law.variables:
    n = table[v].nunique()
    if n < need:
      raise errors.InputError(f'{v} takes only {n} distinct value{"s" * (n != 1)}; the '
                              f'{law.name} law needs at least {need} to tell its {v} exponent '
                              'from the constant: add points at other values of ' + v)


def drop_top_loss(table: pd.DataFrame, k: int) -> pd.DataFrame:
  """Without the k highest-loss points (the replication drops 5)."""
  if k < 0:
    raise errors.InputError(f'--exclude-top-loss must be >= 0, got {k}')
  keep = np.argsort(table['loss'].to_numpy(), kind='stable')[:max(len(table) - k, 0)]
  return table.iloc[np.sort(keep)].reset_index(drop=True)


def duplicates(table: pd.DataFrame, rtol: float = DUPLICATE_RTOL) -> list[list[int]]:
  """Groups (row positions, increasing) of rows equal within rtol in N, D, C and loss."""
  v_PxK = table[list(CANONICAL)].to_numpy(np.float64)
  order = np.argsort(v_PxK[:, 0], kind='stable')
  s_PxK = v_PxK[order]
  end_P = np.searchsorted(s_PxK[:, 0], s_PxK[:, 0] * (1 + rtol), side='right')
  root = np.arange(len(v_PxK))
  for i in range(len(s_PxK)):
    near = s_PxK[i + 1:end_P[i]]
    same = (np.abs(near - s_PxK[i]) <= rtol * np.maximum(np.abs(near), np.abs(s_PxK[i]))).all(1)
    for j in order[i + 1:end_P[i]][same]:
      root[root == root[j]] = root[order[i]]
  groups = pd.Series(np.arange(len(root))).groupby(root).apply(list)
  return sorted((g for g in groups if len(g) > 1), key=lambda g: g[0])


def with_duplicates_clustered(table: pd.DataFrame, groups: list[list[int]]) -> pd.DataFrame:
  """The table with every row of a duplicate group, and every row sharing a cluster with one,
  in one cluster (named after its first row's); unchanged without duplicates."""
  if not groups:
    return table
  labels = (table['cluster'] if 'cluster' in table else
            pd.Series(np.arange(len(table)), index=table.index)).astype(str).to_numpy(object)
  for g in groups:
    labels[np.isin(labels, labels[g])] = labels[g[0]]
  return table.assign(cluster=labels)
