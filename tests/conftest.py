from scaling import steps

steps.enable_compilation_cache()


def pytest_terminal_summary(terminalreporter):
  """How to run the real-SLURM tests, in one line, when they were skipped (slurm_cluster.py)."""
  import slurm_cluster  # pylint: disable=import-outside-toplevel
  if any('test_slurm_cluster' in r.nodeid for r in terminalreporter.stats.get('skipped', [])):
    terminalreporter.write_line(slurm_cluster.SKIP)
