"""`pip install .` (not editable): the wheel holds every package folder of `scaling` and the config
files, adds no generic top-level names, and trains from a folder outside the repository."""

import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
  """The wheel, built from a copy of the source tree (so no build/ lands in the checkout)."""
  tmp = tmp_path_factory.mktemp('wheel')
  src = tmp / 'src'
  shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
      '.venv', '.git', 'runs', 'build', '*.egg-info', '__pycache__', '.pytest_cache'))
  offline = ['--no-build-isolation'] if _has('wheel') else []  # else pip fetches setuptools, wheel
  subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(tmp / 'dist'),
                  *offline, str(src)], check=True, capture_output=True, text=True)
  return glob.glob(str(tmp / 'dist' / '*.whl'))[0]


def _has(module: str) -> bool:
  try:
    __import__(module)
  except ImportError:
    return False
  return True


def test_wheel_holds_every_package_folder_and_no_generic_top_level_names(wheel):
  names = zipfile.ZipFile(wheel).namelist()
  folders = {os.path.dirname(n) for n in names if n.endswith('.py')}
  tops = {n.split('/')[0] for n in names if not n.split('/')[0].endswith('.dist-info')}
  assert tops == {'scaling'}
  for top, shipped in (('scaling', 'scaling'), ('configs', 'scaling/configs'),
                       ('analysis', 'scaling/analysis')):
    for path, _, files in os.walk(os.path.join(ROOT, top)):
      if any(f.endswith('.py') for f in files) and '__pycache__' not in path:
        rel = os.path.relpath(path, os.path.join(ROOT, top))
        assert os.path.normpath(os.path.join(shipped, rel)) in folders, path


def test_installed_wheel_trains_outside_the_repository(wheel, tmp_path):
  """A fresh venv holding only the wheel (its dependencies come from this environment's
  site-packages through a .pth line, so nothing is downloaded), run from an empty folder."""
  venv = tmp_path / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
  python = str(venv / 'bin' / 'python')
  site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                        check=True, capture_output=True, text=True).stdout.strip()
  with open(os.path.join(site, 'deps.pth'), 'w') as f:
    f.write(sysconfig.get_path('purelib') + '\n')  # appended after the venv's own site-packages
  subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', site,
                  wheel], check=True, capture_output=True, text=True)
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH',)}
  where = subprocess.run([python, '-c', 'import scaling; print(scaling.__file__)'], cwd=elsewhere,
                         check=True, capture_output=True, text=True, env=env).stdout
  assert where.startswith(site), where
  out = subprocess.run(
      [python, '-m', 'scaling.train', '--config=configs/lm.py:size=nano', '--workdir=run',
       '--config.steps=5', '--config.seq_len=32', '--config.eval_batches=1',
       '--config.log_every=5', '--config.warmup_steps=1'],
      cwd=elsewhere, capture_output=True, text=True, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(elsewhere / 'run' / 'run.json') as f:
    run = json.load(f)
  assert run['status'] == 'completed' and run['final']['step'] == 5
