"""The digitised Chinchilla data set and the published fits on it (data/chinchilla/README.md).

The data ship with the repository under data/chinchilla/ (Besiroglu et al. 2024, copied unchanged
from epoch-research/analyzing-chinchilla); every entry point takes --data to point elsewhere.
"""

import pathlib

import pandas as pd

from analysis import errors
from analysis import points
from analysis import study as study_lib

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'chinchilla'
FILE = 'svg_extracted_data.csv'
COLUMNS = {'N': 'Model Size', 'C': 'Training FLOP', 'loss': 'loss'}  # D = C / (6N)
UNITS = {'N': 'parameters (column Model Size)', 'D': 'tokens, D = C/(6N)',
         'C': 'FLOPs (column Training FLOP)', 'loss': 'column loss'}
EXCLUDE_TOP_LOSS = 5

PUBLISHED = {
    'Hoffmann et al. 2022': dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
    'Besiroglu et al. 2024, grid fit': dict(E=1.817, A=477.8, B=2143, alpha=0.3473, beta=0.3672),
    'Besiroglu et al. 2024, headline': dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478,
                                            beta=0.3658),
}
GRID_FIT = PUBLISHED['Besiroglu et al. 2024, grid fit']
STDERR = dict(E=0.026, A=124.6, B=1293, alpha=0.015, beta=0.021)  # 4,000 bootstrap resamples
A_EXPONENT = 0.513  # a = beta / (alpha + beta) of the replication (Hoffmann: 0.46)
N_RESAMPLES = 4000
# Hoffmann et al. 2022, Table 2: a and b with their intervals, per approach; Kaplan et al. 2020
TABLE2 = {
    'Hoffmann et al. 2022, Approach 1': dict(a=0.50, a_ci95=(0.488, 0.502), b=0.50,
                                             b_ci95=(0.501, 0.512)),
    'Hoffmann et al. 2022, Approach 2': dict(a=0.49, a_ci95=(0.462, 0.534), b=0.51,
                                             b_ci95=(0.483, 0.529)),
    'Hoffmann et al. 2022, Approach 3': dict(a=0.46, a_ci95=(0.454, 0.455), b=0.54,
                                             b_ci95=(0.542, 0.543)),
    'Kaplan et al. 2020': dict(a=0.73, b=0.27),
}
REPLICATION_SEED = 42


def path(data_dir: str | pathlib.Path = DEFAULT_DATA) -> pathlib.Path:
  return pathlib.Path(data_dir) / FILE


def load(data_dir: str | pathlib.Path = DEFAULT_DATA) -> pd.DataFrame:
  """The 240 points of the replication: N, D = C/(6N), C, loss, 5 highest losses dropped."""
  csv = path(data_dir)
  if not csv.is_file():
    raise errors.InputError(f'no {FILE} in {data_dir}: pass --data=DIR with the Chinchilla data '
                            '(data/chinchilla/ in the repository holds it)')
  table = points.canonical(pd.read_csv(csv), COLUMNS)
  return points.drop_top_loss(table, EXCLUDE_TOP_LOSS)


def study(data_dir: str | pathlib.Path = DEFAULT_DATA) -> study_lib.Study:
  """`load` as a study, its units named as analysis.fit names them for this CSV."""
  return study_lib.Study(load(data_dir), UNITS)
