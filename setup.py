"""scaling: scaling-law experiments for generative models in JAX."""

import setuptools

setuptools.setup(
    name='scaling',
    version='0.1.0',
    description='Scaling-law experiments for Flax LMs and diffusion transformers',
    python_requires='>=3.10',
    # The wheel is the library: `scaling` (every folder of it), with the config files and the analysis layer shipped inside it as
    # scaling/configs and scaling/analysis (scaling/__init__.py binds them to the names `configs`
    # and `analysis` the code imports), so it puts no generic top-level names in site-packages.
    # `experiments` (the sweep launchers) and `benchmarks` stay out: they start `scaling.train`
    # from the repository root and read the study files there, so they run from a checkout
    # (`pip install -e .`), as do the `python -m analysis.*` commands.
    packages=[*setuptools.find_namespace_packages(include=['scaling', 'scaling.*'],
                                                  exclude=['*.__pycache__']),
              *(f'scaling.{p}' for p in setuptools.find_packages(include=['configs*', 'analysis*']))],
    package_dir={'scaling.configs': 'configs', 'scaling.analysis': 'analysis'},
    install_requires=[
        'jax>=0.7',
        'flax>=0.12',
        'optax>=0.2.5',
        'orbax-checkpoint>=0.11',
        'tensorflow-datasets>=4.9.7',
        'importlib_resources',  # imported by tensorflow-datasets without declaring it
        'ml-collections>=1.0',
        'absl-py',
        'numpy',
        'pandas',
        'scipy',
        'matplotlib',
        'tqdm',
        'sentencepiece',  # subword tokenizers for prepared corpora (scaling.data.prepare)
        'tensorboardX',  # TensorBoard event files without TensorFlow
        'scikit-learn',  # the embedded 8x8 digits images
        'threadpoolctl',  # benchmarks/fit_speed.py pins BLAS threads for a fair comparison
    ],
    extras_require={'test': ['pytest', 'pytest-xdist', 'wheel'],
                    'slurm': ['submitit>=1.5']},  # --backend=submitit
)
