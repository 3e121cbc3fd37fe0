"""A terminal progress bar with loss, tokens/s and ETA (process 0 only)."""

from tqdm import tqdm


class Progress:

  def __init__(self, total: int, start: int, enabled: bool):
    self.bar = tqdm(total=total, initial=start, disable=not enabled, unit='step', dynamic_ncols=True,
                    mininterval=1.0)

  def update(self, row: dict) -> None:
    self.bar.update(row['step'] - self.bar.n)
    postfix = {'loss': f"{row['train_loss']:.4f}"}
    if 'tokens_per_s' in row:
      postfix['tok/s'] = f"{row['tokens_per_s']:,.0f}"
    self.bar.set_postfix(postfix, refresh=False)

  def close(self) -> None:
    self.bar.close()
