"""How every parameter of both model families is drawn: one table, read by the models and the docs.

A parameter's rule is looked up by its key, the path inside the model without the block index
(`attn/wq` for every block's query matrix). This is the standard parameterisation (sp) column of
the per-parameter table; docs/model.md shows it, pasted from `markdown()`.

Fan-in rules name their input axes explicitly. Flax's `variance_scaling` with the default
`out_axis=-1` treats every other axis as a receptive field, which made the (D, H, K) query matrix
fan in over D·H instead of D; here every draw is of the matrix view (inputs × outputs), so no
axis can be miscounted.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx
from ml_collections import config_dict

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
  return rules


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
  return rules


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
