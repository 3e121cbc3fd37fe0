"""The learning rate, batch size and steps of a planned run: an hparams fit (analysis.hparams_json)
evaluated at a plan's N_opt, D_opt and C (analysis.allocation.plan), with 95% intervals over both
fits' bootstrap samples, paired resample by resample (the two fits are independent)."""

import numpy as np

from analysis import hparam_laws
from analysis import hparams_json
from analysis import intervals

FAR = 10.0  # a budget this many times beyond the hparams fit's range of C is warned about


def _evaluate(law: dict, at: dict) -> np.ndarray:
  exponents = {v: a for v, a in law.items() if v != 'coefficient'}
  return hparam_laws.power_product(law['coefficient'], exponents, **at)


def quantities(laws: dict[str, dict], batch_unit: str, point: dict) -> dict:
  """lr, batch and (batch in tokens) steps = D / batch at a plan's N_opt, D_opt and FLOPs; the
  laws' parameters and the point may be arrays of resamples of one length."""
  at = {'N': point['N_opt'], 'D': point['D_opt'], 'C': point['FLOPs']}
  out = {'lr': _evaluate(laws['lr'], at), 'batch': _evaluate(laws['batch'], at)}
  if batch_unit == 'tokens':
    out['steps'] = np.asarray(at['D']) / out['batch']
  return out


def lines(hp: hparams_json.Fitted, point: dict, boot: dict | None) -> list[str]:
  """The plan's table rows for the learning rate, the batch and the steps."""
  resampled = None
  if boot is not None and hp.samples is not None:
    n = min(len(boot['N_opt']), len(hp.samples['lr']['coefficient']))
    laws = {k: {p: v[:n] for p, v in law.items()} for k, law in hp.samples.items()}
    resampled = quantities(laws, hp.batch_unit, {k: np.asarray(v)[:n] for k, v in boot.items()})
  names = {'lr': 'learning rate', 'batch': f'batch ({hp.batch_unit})', 'steps': 'steps'}
  out = [f'{names[k]:<18}{float(v):>12.4g}  ' +
         (intervals.text(resampled[k]) if resampled is not None else '')
         for k, v in quantities(hp.laws, hp.batch_unit, point).items()]
  if hp.batch_unit != 'tokens':
    out.append(f'steps: the batch is in {hp.batch_unit}; refit with --batch-unit=tokens for them')
  return out


def far_warning(hp: hparams_json.Fitted, C: float) -> str | None:
  """One line when the budget lies more than FAR x beyond the hparams fit's range of C."""
  lo, hi = hp.fitted_range['C']
  if C > FAR * hi or C < lo / FAR:
    return (f'the budget C = {C:.3g} lies {max(C / hi, lo / C):.3g}x beyond the C range of the '
            f'hparams fit ({lo:.3g} to {hi:.3g}): its learning rate and batch are extrapolated')
  return None
