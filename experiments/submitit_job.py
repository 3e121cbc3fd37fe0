"""What one submitit task runs: `scaling.train` as a child, with the scheduler's signals passed on.

submitit's own answer to SLURM's time-limit signal (SIGUSR2, `slurm_signal_delay_s` before the
limit) is to call the function's `checkpoint()` and requeue the job, or, for a plain command,
to let it be killed: no checkpoint, run.json left `running`. We forward the signal instead,
exactly as `--backend=slurm` delivers it: SIGUSR2 (time limit, or preemption) and SIGTERM
(scancel) become SIGTERM to the trainer, which checkpoints, marks run.json `preempted` and exits
143. The task then fails, so waves that depend on it are cancelled, and launching the sweep again
resumes the run from that checkpoint. The trainer starts with SIGUSR2 ignored: SLURM signals
every process of the job step, the trainer included, and SIGUSR2's default action is to kill.

This module imports nothing heavy: submitit unpickles `Train` in every task before it runs.
"""

import signal
import subprocess
import sys

FORWARDED = (signal.SIGUSR2, signal.SIGTERM)


def _ignore_usr2() -> None:
  signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # an ignored signal stays ignored across exec


class Train:
  """A picklable command: `python -m scaling.train ARGS` in `cwd`; output goes to submitit's log."""

  def __init__(self, args: list[str], cwd: str):
    self.args, self.cwd = list(args), cwd

  def __call__(self) -> str:
    child, received = [], []

    def forward(signum, _frame) -> None:
      received.append(signal.Signals(signum).name)
      if child and child[0].poll() is None:
        child[0].send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
      child.append(subprocess.Popen([sys.executable, '-m', 'scaling.train', *self.args],
                                    cwd=self.cwd, preexec_fn=_ignore_usr2))
      if received:  # a signal that came before the child existed
        child[0].send_signal(signal.SIGTERM)
      code = child[0].wait()
    finally:
      for sig, handler in previous.items():
        signal.signal(sig, handler)
    if code == 0:
      return 'completed'
    why = f' after {"+".join(received)} (forwarded as SIGTERM)' if received else ''
    raise RuntimeError(f'scaling.train exited with status {code}{why}; its run.json says how it '
                       'ended; launch the sweep again to resume it')
