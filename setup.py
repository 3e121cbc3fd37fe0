"""scaling: scaling-law experiments for generative models in JAX."""

import setuptools

setuptools.setup(
    name='scaling',
    version='0.1.0',
    description='Scaling-law experiments for Flax LMs and diffusion transformers',
    python_requires='>=3.10',
    packages=setuptools.find_packages(include=['scaling*', 'configs*', 'experiments*', 'analysis*',
                                               'benchmarks*']),
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
        'tensorboardX',  # TensorBoard event files without TensorFlow
        'scikit-learn',  # the embedded 8x8 digits images
        'threadpoolctl',  # benchmarks/fit_speed.py pins BLAS threads for a fair comparison
    ],
    extras_require={'test': ['pytest', 'pytest-xdist']},
)
