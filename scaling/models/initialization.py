"""How every parameter of both model families is drawn: one table, read by the models and the docs.

A parameter's rule is looked up by its key, the path inside the model without the block index
(`attn/wq` for every block's query matrix). This is the standard parameterisation (sp) column of
the per-parameter table; docs/model.md shows it, pasted from `markdown()`.

Fan-in rules name their input axes explicitly. Flax's `variance_scaling` with the default
`out_axis=-1` treats every other axis as a receptive field, which made the (D, H, K) query matrix
fan in over D·H instead of D; here every draw is of the matrix view (inputs × outputs), so no
axis can be miscounted.

μP (issue 12; docs/mup.md) is the second column: `lm_mup`/`dit_mup` give each key its kind in
Tensor Programs V's table, and `mup_column` turns kind and width into (init, Adam lr multiplier).
Under `parameterization='mup'`, `lm_rules`/`dit_rules` return μP's inits (so the modules draw
them), `lr_multiplier` gives scaling/optim.py its per-parameter factor, and `attention_scale` and
`output_multiplier` are the two forward multipliers the modules read.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx
from ml_collections import config_dict

from scaling.errors import ConfigError

Init = nnx.initializers.Initializer
DISTRIBUTIONS = ('zeros', 'ones', 'normal', 'truncated_normal', 'xavier_uniform')


@dataclasses.dataclass(frozen=True)
class Rule:
  """dist: one of DISTRIBUTIONS. The first `inputs` axes of the shape are the fan-in axes.

  normal: std is `std`. truncated_normal: std = sqrt(gain / fan_in) (LeCun, as in nanoGPT's
  1/sqrt(fan_in) with GPT-2's residual scaling in `gain`). xavier_uniform: std =
  sqrt(gain * 2 / (fan_in + fan_out)), the matrix view's Glorot rule (DiT's choice).
  """
  dist: str
  shape: str  # the shape in the docs' symbols, e.g. 'D×H×K'
  inputs: int = 1
  std: float = 0.0
  gain: float = 1.0
  gain_text: str = ''  # the gain as a formula of the config, for the docs
  why: str = ''

  def __post_init__(self):
    assert self.dist in DISTRIBUTIONS, self.dist

  def fans(self, shape: tuple[int, ...]) -> tuple[int, int]:
    fan_in = math.prod(shape[:self.inputs])
    return fan_in, math.prod(shape) // fan_in

  def stddev(self, shape: tuple[int, ...]) -> float:
    fan_in, fan_out = self.fans(shape)
    return {'zeros': 0.0, 'ones': 0.0, 'normal': self.std,
            'truncated_normal': math.sqrt(self.gain / fan_in),
            'xavier_uniform': math.sqrt(self.gain * 2 / (fan_in + fan_out))}[self.dist]

  def initializer(self) -> Init:
    if self.dist in ('zeros', 'ones'):
      return nnx.initializers.zeros_init() if self.dist == 'zeros' else nnx.initializers.ones_init()

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
      # Drawn as a 2-D matrix and reshaped: XLA:CPU takes seconds to compile a 4-D draw.
      matrix = self.fans(shape)
      if self.dist == 'normal':
        draw = nnx.initializers.normal(self.std)
      elif self.dist == 'truncated_normal':
        draw = nnx.initializers.variance_scaling(self.gain, 'fan_in', 'truncated_normal')
      else:
        draw = nnx.initializers.variance_scaling(self.gain, 'fan_avg', 'uniform')
      return draw(key, matrix, dtype).reshape(shape)
    return init

  def std_text(self) -> str:
    fan_in = ' · '.join(self.shape.split('×')[:self.inputs])
    fan_in = fan_in if self.inputs == 1 else f'({fan_in})'
    if self.dist in ('zeros', 'ones'):
      return f'0 (all {self.dist})'
    if self.dist == 'normal':
      return f'{self.std:g}'
    if self.dist == 'truncated_normal':
      return f'1/√{fan_in}' + ('' if self.gain == 1 else f' · √({self.gain_text})')
    fan_out = ' · '.join(self.shape.split('×')[self.inputs:])
    return f'√(2 / ({fan_in} + {fan_out}))'


def key(path) -> str:
  """'blocks/3/attn/wq' (or a pytree key path to it) -> 'attn/wq'."""
  parts = []
  for p in (path.split('/') if isinstance(path, str) else path):
    p = getattr(p, 'key', getattr(p, 'idx', p))
    if isinstance(p, int) or str(p).isdigit() or p == 'blocks':
      continue
    parts.append(str(p))
  return '/'.join(parts)


def lm_rules(m: config_dict.ConfigDict) -> dict[str, Rule]:
  depth, depth_text = 1 / (2 * m.n_layer) if m.n_layer else 1.0, '1/(2·n_layer)'
  residual = 'writes into the residual stream, which sums 2·n_layer such outputs (GPT-2)'
  fan_in = 'LeCun fan-in: unit-variance inputs give unit-variance outputs'
  small = 'GPT-2: small logits at init, so the loss starts near ln V'
  rules = {
      'embed': Rule('normal', 'V×D', std=0.02, why=small),
      'attn/wq': Rule('truncated_normal', 'D×H×K', why=fan_in),
      'attn/wk': Rule('truncated_normal', 'D×H×K', why=fan_in),
      'attn/wv': Rule('truncated_normal', 'D×H×K', why=fan_in),
      'attn/wo': Rule('truncated_normal', 'H×K×D', inputs=2, gain=depth, gain_text=depth_text,
                      why=residual),
      'mlp/w_in': Rule('truncated_normal', 'D×F', why=fan_in),
      'mlp/w_gate': Rule('truncated_normal', 'D×F', why=fan_in),
      'mlp/w_out': Rule('truncated_normal', 'F×D', gain=depth, gain_text=depth_text,
                        why=residual),
      'unembed': Rule('normal', 'D×V', std=0.02, why=small),
  }
  for norm in ('attn_norm', 'mlp_norm', 'out_norm'):
    rules[f'{norm}/scale'] = Rule('ones', 'D', why='RMSNorm starts as a plain normalisation')
  return _mup_inits(rules, lm_mup(), m)


def dit_rules(m: config_dict.ConfigDict) -> dict[str, Rule]:
  glorot = 'DiT (Peebles & Xie): xavier_uniform on every linear layer'
  timm = 'DiT: normal(0.02) for the timestep MLP and the class table'
  zero = 'adaLN-Zero: each block, and the output, start as identity and zero'
  rules = {
      'w_patch': Rule('xavier_uniform', 'P·P·C×D', why=glorot + ' (the patch conv as a matrix)'),
      'cond/w_t1': Rule('normal', 'F_t×D', std=0.02, why=timm),
      'cond/w_t2': Rule('normal', 'D×D', std=0.02, why=timm),
      'cond/classes': Rule('normal', '(classes+1)×D', std=0.02, why=timm),
      'attn/w_qkv': Rule('xavier_uniform', 'D×3×H×K', why=glorot + ', q, k and v as one D×3D matrix'),
      'attn/w_o': Rule('xavier_uniform', 'H×K×D', inputs=2, why=glorot),
      'mlp/w_in': Rule('xavier_uniform', 'D×F', why=glorot),
      'mlp/w_out': Rule('xavier_uniform', 'F×D', why=glorot),
      'modulation/w': Rule('zeros', 'D×6×D', why=zero),
      'final_modulation/w': Rule('zeros', 'D×2×D', why=zero),
      'w_out': Rule('zeros', 'D×P·P·C', why=zero),
  }
  biases = {'b_patch': 'D', 'cond/b_t1': 'D', 'cond/b_t2': 'D', 'attn/b_qkv': '3×H×K',
            'attn/b_o': 'D', 'mlp/b_in': 'F', 'mlp/b_out': 'D', 'modulation/b': '6×D',
            'final_modulation/b': '2×D', 'b_out': 'P·P·C'}
  rules.update({k: Rule('zeros', s, why='biases start at zero') for k, s in biases.items()})
  return _mup_inits(rules, dit_mup(), m)


def markdown(rules: dict[str, Rule]) -> str:
  """The table of docs/model.md for one family's rules."""
  lines = ['| parameter | shape | distribution | std | fan-in axes | depth scaling | why |',
           '|---|---|---|---|---|---|---|']
  for name, r in rules.items():
    random = r.dist in ('truncated_normal', 'xavier_uniform')
    axes = ' · '.join(r.shape.split('×')[:r.inputs]) if random else '—'
    depth = f'variance × {r.gain_text}' if r.gain_text else '—'
    lines.append(f'| `{name}` | {r.shape} | {r.dist} | {r.std_text()} | {axes} | {depth} | '
                 f'{r.why} |')
  return '\n'.join(lines) + '\n'


# ---- μP: Yang et al. 2022 (Tensor Programs V), Table 3 for Adam in the multiplier form of its
# Table 8 and of the `mup` package. r = d_model / base_width; at r = 1 every row is sp's.
PARAMETERIZATIONS = ('sp', 'mup')
MUP_KINDS = {
    # An Adam step moves every coordinate by ~lr; through a fan-in of n correlated inputs that
    # changes the output by ~n·lr, so a matrix whose fan-in grows with width needs lr ∝ 1/n.
    'hidden': ('sp\'s: ∝ 1/√width, or zero', 'base/width', '—'),
    # Fan-in fixed (embeddings, patch, timestep features) or a vector (biases, norm scales):
    # a step of ~lr changes the output by ~lr at every width.
    'input': ('constant in width', '1', '—'),
    'vector': ('constant in width', '1', '—'),
    # The readout (fan-out fixed) sees a width-n input too: its ~n·lr change is cancelled by a
    # forward multiplier base/width on its output, not by its lr (Table 8's form).
    'output': ('sp\'s', '1', 'output × base/width'),
}


@dataclasses.dataclass(frozen=True)
class MupRow:
  kind: str  # one of MUP_KINDS
  why: str
  # sp's std times this (a function of the model config): for sp stds that scale with width
  # the wrong way for the kind. 1 at width == base_width.
  std_factor: object = None


def parameterization(m: config_dict.ConfigDict) -> str:
  return m.get('parameterization', 'sp')


def check_parameterization(m: config_dict.ConfigDict) -> None:
  kind, base = parameterization(m), m.get('base_width', 0)
  if kind not in PARAMETERIZATIONS:
    raise ConfigError(f'parameterization: unknown {kind!r}; use one of '
                      f'{", ".join(PARAMETERIZATIONS)}')
  if kind == 'mup' and not (isinstance(base, int) and base >= 1 and m.d_model % base == 0
                            and base % m.n_head == 0):
    raise ConfigError(f'base_width: {base} must divide model.d_model={m.d_model} and be a '
                      f'multiple of model.n_head={m.n_head} under mup; set --config.base_width '
                      'to the d_model at which the learning rate was tuned')


def width_ratio(m: config_dict.ConfigDict) -> float:
  """r = d_model / base_width under mup; 1 under sp."""
  return m.d_model / m.base_width if parameterization(m) == 'mup' else 1.0


_HIDDEN = 'fan-in and fan-out both grow with width'


def lm_mup() -> dict[str, MupRow]:
  rows = {k: MupRow('hidden', _HIDDEN) for k in ('attn/wq', 'attn/wk', 'attn/wv', 'attn/wo',
                                                  'mlp/w_in', 'mlp/w_gate', 'mlp/w_out')}
  rows['embed'] = MupRow('input', 'fan-in V fixed (when tied, the logits still get the output '
                                  'multiplier)')
  rows['unembed'] = MupRow('output', 'fan-out V fixed; normal(0.02) kept, so mup at base width is '
                                     'sp')
  for norm in ('attn_norm', 'mlp_norm', 'out_norm'):
    rows[f'{norm}/scale'] = MupRow('vector', 'a vector')
  return rows


def dit_mup() -> dict[str, MupRow]:
  rows = {k: MupRow('hidden', _HIDDEN) for k in ('attn/w_qkv', 'attn/w_o', 'mlp/w_in',
                                                  'mlp/w_out')}
  rows.update({
      'w_patch': MupRow('input', 'fan-in P·P·C fixed; Glorot\'s std falls with D, so it is held '
                                 'at its base-width value', lambda m: math.sqrt(
                                     (m.patch**2 * m.channels + m.d_model)
                                     / (m.patch**2 * m.channels + m.base_width))),
      'cond/w_t1': MupRow('input', 'fan-in F_t fixed'),
      'cond/w_t2': MupRow('hidden', 'D×D; sp\'s constant 0.02 becomes 0.02·√(base/D)',
                          lambda m: math.sqrt(m.base_width / m.d_model)),
      'cond/classes': MupRow('input', 'an embedding table'),
      # adaLN-Zero: these map the width-D condition to 6·D (2·D) shifts, scales and gates, a
      # hidden matrix by μP's rule. μP bounds a hidden init only from above, so sp's zero init
      # is kept (every block still starts as the identity, DiT's point), and the hidden lr
      # × base/width keeps each gate's change per step O(1) at every width.
      'modulation/w': MupRow('hidden', 'adaLN-Zero D→6·D: a hidden matrix; zero init kept, so '
                                       'blocks start as the identity'),
      'final_modulation/w': MupRow('hidden', 'adaLN-Zero D→2·D: a hidden matrix; zero init kept'),
      'w_out': MupRow('output', 'fan-out P·P·C fixed; its zero init is μP\'s recommended readout'),
  })
  for k in ('b_patch', 'cond/b_t1', 'cond/b_t2', 'attn/b_qkv', 'attn/b_o', 'mlp/b_in',
            'mlp/b_out', 'modulation/b', 'final_modulation/b', 'b_out'):
    rows[k] = MupRow('vector', 'a bias (zero init)')
  return rows


def _scaled(rule: Rule, factor: float) -> Rule:
  if rule.dist == 'normal':
    return dataclasses.replace(rule, std=rule.std * factor)
  return dataclasses.replace(rule, gain=rule.gain * factor**2)  # fan-in and Glorot: std ∝ √gain


def _mup_inits(rules: dict[str, Rule], rows: dict[str, MupRow],
               m: config_dict.ConfigDict) -> dict[str, Rule]:
  if parameterization(m) != 'mup':
    return rules
  check_parameterization(m)
  return {k: _scaled(r, rows[k].std_factor(m)) if rows[k].std_factor else r
          for k, r in rules.items()}


def mup_column(family: str, m: config_dict.ConfigDict) -> dict[str, tuple[Rule, float]]:
  """key -> (init rule, Adam lr multiplier) for family 'lm' or 'diffusion' at m's width."""
  rules, rows = (lm_rules(m), lm_mup()) if family == 'lm' else (dit_rules(m), dit_mup())
  r = width_ratio(m)
  return {k: (rule, 1 / r if rows[k].kind == 'hidden' else 1.0) for k, rule in rules.items()}


def lr_multiplier(family: str, m: config_dict.ConfigDict):
  """A function from a parameter's path to its Adam lr multiplier; None under sp."""
  if parameterization(m) != 'mup':
    return None
  column = mup_column(family, m)

  def multiplier(path) -> float:
    k = key(path)
    while k not in column and '/' in k:  # a task's wrapper module: the DiT is `net/` of its task
      k = k.split('/', 1)[1]
    return column[k][1]  # an unknown parameter is a KeyError, never a silent 1
  return multiplier


def attention_scale(m: config_dict.ConfigDict, head_dim: int) -> float | None:
  """μP's 1/d_head attention logits, as √K₀/K with K₀ = base_width/n_head the base model's head
  width, so that the scale is sp's 1/√K at base width. None under sp: the default of
  jax.nn.dot_product_attention, 1/√K. Assumes width grows the head dim at a fixed n_head, the regime where 1/K and 1/√K differ."""
  if parameterization(m) != 'mup':
    return None
  return math.sqrt(m.base_width / m.n_head) / head_dim


def output_multiplier(m: config_dict.ConfigDict) -> float | None:
  """μP's readout multiplier base/width; None under sp."""
  return 1 / width_ratio(m) if parameterization(m) == 'mup' else None


def mup_markdown(family: str) -> str:
  """The μP column of docs/mup.md for one family."""
  rows = lm_mup() if family == 'lm' else dit_mup()
  lines = ['| parameter | kind | init std | Adam lr × | forward | why |', '|---|---|---|---|---|---|']
  for name, row in rows.items():
    init, lr, forward = MUP_KINDS[row.kind]
    init = 'sp\'s × factor (see why)' if row.std_factor else init
    lines.append(f'| `{name}` | {row.kind} | {init} | {lr} | {forward} | {row.why} |')
  return '\n'.join(lines) + '\n'
