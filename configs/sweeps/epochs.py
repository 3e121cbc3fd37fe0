"""Data-constrained scaling on CPU: three small byte-level LMs trained for 1/4 to 16 epochs of one
small prepared corpus, to fit the effective-data law of Muennighoff et al. (2023).

Study: each size (the CPU ladder's n11k, n41k, n131k) sees 1/4, 1/2 and 1 epoch (fresh data: the
Chinchilla part of the law) and 2, 4, 8 and 16 epochs (repeated data: R_D*, and R_N* where a size
has more parameters than its unique data makes compute-optimal). Every run's epochs are set by
`epochs` (steps = floor(epochs x the corpus's tokens per epoch / tokens per step)) and allowed by
max_epochs; metrics.jsonl logs `epoch` and run.json the corpus size.

A small corpus keeps it on CPU: 1 MB of text (about 20 steps of 8 x 64 tokens per 10 KB). E.g.
the first 1 MB of the stdlib's text files as bytes:

  mkdir -p /tmp/text1mb && python - <<'PY'
  import os, sysconfig, shutil
  root = sysconfig.get_paths()['stdlib']; size = 0
  for f in sorted(os.listdir(root)):
      if f.endswith('.py') and size < 1 << 20:
          shutil.copy(os.path.join(root, f), '/tmp/text1mb'); size += os.path.getsize(os.path.join(root, f))
  PY
  python -m scaling.data.prepare --dataset=textdir:/tmp/text1mb --out=/tmp/tokens1mb
  python -m experiments.sweep --sweep=configs/sweeps/epochs.py:dataset=tokens:/tmp/tokens1mb \
      --outdir=runs/epochs --max-parallel=2
  python -m analysis.fit --runs=runs/epochs --law=data_constrained --out=runs/epochs/fit

Expected result: at fixed size, loss keeps falling with epochs but by less and less, and the fit
gives R_D* of order 10 (the paper's 15.4 for C4 and GPT-2 BPE; a byte-level toy need not agree).
Arguments: `dataset=tokens:DIR` (required). Run time and fit: experiments/README.md.
"""

from configs import ladder

SIZES = ('n11k', 'n41k', 'n131k')
EPOCHS = (0.25, 0.5, 1, 2, 4, 8, 16)


def get_sweep(arg: str = '') -> dict:
  data = ladder.prepared_corpus(arg, 'configs/sweeps/epochs.py')
  training = {**ladder.CPU_LM_TRAINING, 'dataset': data['dataset']}
  return {'name': 'epochs',
          'runs': [{'name': f'ep{epochs:g}-{size}', 'config': ladder.CPU_LM, 'epochs': epochs,
                    'overrides': {**ladder.CPU_LM_SHAPES[size], **training}}
                   for size in SIZES for epochs in EPOCHS]}
