"""The config checks: each declared beside its field (a config module's CHECKS), refused at
import when it names a field the config lacks, enforced on every declared field, and every float
field finite. Also the one parser of the dataset field."""

import importlib
import math

import pytest
from ml_collections import config_dict

from configs import dit, lm
from scaling import checks
from scaling.data import spec
from scaling.errors import ConfigError

MODULES = {'lm': lm, 'diffusion': dit}


class FakeConfigModule:
  __file__ = 'configs/fake.py'

  def __init__(self, checks_):
    self.CHECKS = checks_

  @staticmethod
  def get_config():
    c = config_dict.ConfigDict()
    c.steps = 10
    c.model = config_dict.ConfigDict({'n_layer': 2})
    return c


def test_a_check_naming_a_field_the_config_lacks_fails_at_import(monkeypatch):
  checks.declared_checks(FakeConfigModule({'steps': 'count', 'model.n_layer': 'count'}))
  with pytest.raises(ImportError, match="CHECKS names 'model.n_layr', which its config lacks"):
    checks.declared_checks(FakeConfigModule({'model.n_layr': 'count'}))
  with pytest.raises(ImportError, match="unknown rule 'postive'"):
    checks.declared_checks(FakeConfigModule({'steps': 'postive'}))
  # The same, as importing scaling.checks meets it: a typo in configs/lm.py's CHECKS.
  monkeypatch.setattr(lm, 'CHECKS', lm.CHECKS | {'eval_batchs': 'count'})
  try:
    with pytest.raises(ImportError, match='eval_batchs'):
      importlib.reload(checks)
  finally:
    monkeypatch.undo()
    importlib.reload(checks)
  with pytest.raises(ImportError, match="no config has"):
    checks.fields_exist(('mesh.data', 'mesh.dat'), 'a list')


def _set(c, field: str, value) -> None:
  node = c
  for key in field.split('.')[:-1]:
    node = node[key]
  node[field.split('.')[-1]] = value


BAD = {'count': 0, 'non_negative': -1, 'positive': 0.0, 'unit_closed': 1.5, 'unit_open': 1.0}


@pytest.mark.parametrize('task', MODULES)
def test_every_declared_bound_is_enforced_with_the_field_named(task):
  module = MODULES[task]
  for field, rule in module.CHECKS.items():
    c = module.get_config()
    _set(c, field, type(checks._get(c, field))(BAD[rule]))
    # A field set by reference (model.seq_len follows seq_len) breaks both: the first is named.
    broken = [f for f, r in module.CHECKS.items() if not checks.RULES[r][0](checks._get(c, f))]
    assert field in broken
    with pytest.raises(ConfigError, match=f'^{broken[0]}: '):
      checks.check_numbers(c)
  checks.check_numbers(module.get_config())  # the defaults pass


@pytest.mark.parametrize('task', MODULES)
@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_every_float_field_must_be_finite(task, value):
  floats = [f for f, v in checks._leaves(MODULES[task].get_config()) if isinstance(v, float)]
  assert len(floats) >= 10  # lr, b1, b2, weight_decay, ...: not a vacuous loop
  for field in floats:
    c = MODULES[task].get_config()
    _set(c, field, value)
    with pytest.raises(ConfigError, match=f'^{field}: .* is not a finite number'):
      checks.check_numbers(c)


def test_a_config_missing_a_declared_field_is_refused():
  c = lm.get_config()
  del c['max_epochs']
  with pytest.raises(ConfigError, match='max_epochs: missing from the config'):
    checks.check_numbers(c)


@pytest.mark.parametrize('text, kind, arg', [
    ('stdlib', 'stdlib', ''), ('textdir:/a/b', 'textdir', '/a/b'), ('tokens:/x:y', 'tokens', '/x:y'),
    ('tfds:lm1b', 'tfds', 'lm1b'), ('digits', 'digits', ''),
    ('fashion_mnist_idx:/d', 'fashion_mnist_idx', '/d')])
def test_a_dataset_spec_parses_once_into_a_typed_value(text, kind, arg):
  parsed = spec.parse(text)
  assert (parsed.kind, parsed.arg, str(parsed)) == (kind, arg, text)
  assert parsed.folder == (arg if kind in spec.FOLDERS else None)


@pytest.mark.parametrize('text, family, match', [
    ('wikipedia', 'text', "'wikipedia' is not a text dataset; use stdlib"),
    ('stdlib:/x', 'text', 'is not a text dataset'),
    ('textdir:', 'text', 'is not a text dataset'),
    ('textdir', None, 'is not a known dataset'),
    ('digits', 'text', 'is not a text dataset'),
    ('stdlib', 'images', 'is not an image dataset; use digits'),
    ('tokens:/x', 'text source', 'is not a text source; use stdlib, textdir'),
])
def test_a_bad_dataset_spec_is_one_line(text, family, match):
  with pytest.raises(ConfigError, match=match):
    spec.parse(text, family=family)
