"""The loss-curve laws across learning-rate schedules, as plain vectorised functions of a schedule.

A schedule is the LR of every step, lr_T = (η_0, η_1, …, η_T): η_t is the LR of the t-th update
and η_0 = 0 (no update yet), so a warmup starts from 0 (analysis.schedules builds these arrays).
The loss at step t (t updates done) is predicted from η_0 … η_t. S1(t) = Σ_{τ≤t} η_τ is the area
under the LR curve, warmup included.

- `multipower` (Luo et al. 2025, "A Multi-Power Law for Loss Curve Prediction Across Learning Rate
  Schedules", ICLR, arXiv 2503.12811):
  L(t) = L0 + A·S1(t)^(−α) − B·Σ_{k=1..t} (η_{k−1} − η_k)·G(η_k^(−γ)·S_k(t)),
  S_k(t) = Σ_{τ=k..t} η_τ, G(x) = 1 − (C·x + 1)^(−β).
  The paper writes A·(S1 + S_W)^(−α) with S1 counted from the warmup's end and S_W the warmup's
  area; here S1 counts the warmup, which is the same sum (S_W is inside S1, nothing is added).
  The loss-drop sum runs over every step, the warmup's LR increases included (they enter with
  η_{k−1} − η_k < 0): this is Luo et al.'s code (src/models.py), the convention their published
  parameters were fitted under. η_k^(−γ) uses max(η_k, LR_FLOOR) (a schedule decaying to 0).
  The sum is merged into blocks far from t (analysis.loss_drop; within 2e-5 of the exact sum).
- `annealing` (Tissue et al. 2024, "Scaling Law with Learning Rate Annealing", arXiv 2408.11029):
  L(t) = L0 + A·S1(t)^(−α) − C·S2(t), S2(t) = Σ_{i≤t} m_i, m_i = λ·m_{i−1} + (η_{i−1} − η_i).
  The momentum m counts the LR's changes after the warmup (from the first step at the schedule's
  peak on): the warmup's rise is not annealing, and counted it would add a slowly rising term for
  thousands of steps after it.

Parameters broadcast: pass arrays of shape (n, 1) to evaluate n parameter rows at once: (n, P).
"""

import numpy as np
from scipy import signal

from analysis import loss_drop

LR_FLOOR = loss_drop.LR_FLOOR
MULTIPOWER_PARAMS = ('L0', 'A', 'alpha', 'B', 'C', 'beta', 'gamma')  # Luo et al.'s PARAMS order
ANNEALING_PARAMS = ('L0', 'A', 'alpha', 'C', 'lam')
ANNEALING_LAMBDA = 0.999  # Tissue et al.'s default decay factor of the annealing momentum


def lr_area(lr_T: np.ndarray) -> np.ndarray:
  """S1(t) = Σ_{τ≤t} η_τ at every step t = 0..T."""
  return np.cumsum(np.asarray(lr_T, dtype=float))


def multipower(lr_T: np.ndarray, t_P: np.ndarray, L0, A, alpha, B, C, beta, gamma,
               terms: loss_drop.DropTerms | None = None) -> np.ndarray:
  """The multi-power law at steps t_P (1 ≤ t ≤ T). `terms`: loss_drop.drop_terms(lr_T, t_P),
  when the same schedule and steps are evaluated many times (a fit)."""
  t_P = np.asarray(t_P)
  terms = loss_drop.drop_terms(lr_T, t_P) if terms is None else terms
  area = lr_area(lr_T)[t_P]
  return L0 + A * area**-np.asarray(alpha) - B * terms.drop_sum(C, beta, gamma)


def warmup_end(lr_T: np.ndarray) -> int:
  """The first step at the schedule's largest LR: where its warmup ends."""
  return int(np.argmax(lr_T))


def annealing_area(lr_T: np.ndarray, lam: float = ANNEALING_LAMBDA) -> np.ndarray:
  """S2(t) at every step t = 0..T, the momentum starting at the warmup's end."""
  lr_T = np.asarray(lr_T, dtype=float)
  drop = np.zeros_like(lr_T)
  start = warmup_end(lr_T) + 1
  drop[start:] = lr_T[start - 1:-1] - lr_T[start:]
  momentum = signal.lfilter([1.0], [1.0, -lam], drop)  # m_i = λ m_{i−1} + drop_i
  return np.cumsum(momentum)


def annealing(lr_T: np.ndarray, t_P: np.ndarray, L0, A, alpha, C,
              lam: float = ANNEALING_LAMBDA) -> np.ndarray:
  """The annealing law at steps t_P (1 ≤ t ≤ T), for one λ."""
  t_P = np.asarray(t_P)
  return L0 + A * lr_area(lr_T)[t_P]**-np.asarray(alpha) - C * annealing_area(lr_T, lam)[t_P]
