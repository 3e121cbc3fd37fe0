"""scaling: scaling-law experiments for generative models in JAX.

The code imports the config files as `configs` and the hardware table as `analysis.hardware`, the
names they have in a checkout. The wheel ships both folders inside this package instead
(scaling/configs, scaling/analysis; see setup.py), so that it adds no generic top-level names to
site-packages; here those names are bound to the shipped copies. A checkout run from another
folder binds its own copies the same way when nothing else provides the names.
"""

import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _bind(name: str) -> None:
  for folder, always in ((os.path.join(_HERE, name), True),  # the wheel: ours, whatever else exists
                         (os.path.join(os.path.dirname(_HERE), name), False)):  # a checkout
    init = os.path.join(folder, '__init__.py')
    if not os.path.isfile(init) or name in sys.modules:
      continue
    if not always and importlib.util.find_spec(name) is not None:
      return
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return


for _name in ('configs', 'analysis'):
  _bind(_name)
