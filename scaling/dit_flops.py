"""FLOP accounting and parameter counts for scaling.models.dit.DiT, under the LM's two conventions.

A DiT pays its adaLN modulation (6·D² per block) once per image, not once per patch token, so
6·N·tokens overstates its compute by about 1.4-1.5x at the published shapes; everything here is
counted per image from the layer shapes.
- 'kaplan': 2 × the multiply-accumulates of the non-embedding weights (blocks, timestep MLP and
  final modulation; not the patch embedding, the output projection or the class table), plus the
  attention context term. Nothing is masked, so that term is the full QKᵀ and A·V: 4·T²·D per
  layer.
- 'chinchilla': 2 × every matmul's multiply-accumulates, plus 3 FLOPs per attention score for the
  softmax, as in Hoffmann et al. 2022, Appendix F.
Training = forward + backward = 3 × forward, as for the LM.
For MFU only, MaxText's convention as scaling/flops.py defines it for the LM (matmuls only, no
softmax): here every matmul, since the DiT has no embedding lookup and masks nothing.
"""

from ml_collections import config_dict

CONVENTIONS = ('kaplan', 'chinchilla')


def n_tokens(m: config_dict.ConfigDict) -> int:
  return (m.image_size // m.patch) ** 2


def _patch_features(m: config_dict.ConfigDict) -> int:
  return m.patch * m.patch * m.channels


def _macs(m: config_dict.ConfigDict) -> dict[str, int]:
  """Multiply-accumulates of one image's forward pass, by where they are paid."""
  D, T, F = m.d_model, n_tokens(m), m.mlp_ratio * m.d_model
  return {
      'block_tokens': m.n_layer * T * (4 * D * D + 2 * D * F),  # QKV, output projection, MLP
      'block_images': m.n_layer * 6 * D * D,  # adaLN: once per image
      'attention': m.n_layer * 2 * T * T * D,  # QKᵀ and A·V
      'conditioning': m.freq_dim * D + D * D + 2 * D * D,  # timestep MLP, final adaLN
      'embedding': 2 * T * _patch_features(m) * D,  # patch embedding, output projection
  }


def dit_forward_macs(m: config_dict.ConfigDict) -> int:
  return sum(_macs(m).values())


def dit_forward_flops_per_image(m: config_dict.ConfigDict) -> dict[str, float]:
  macs = _macs(m)
  nonembedding = macs['block_tokens'] + macs['block_images'] + macs['conditioning']
  softmax = 3 * m.n_layer * m.n_head * n_tokens(m) ** 2
  return {'kaplan': 2 * nonembedding + 2 * macs['attention'],
          'chinchilla': 2 * dit_forward_macs(m) + softmax}


def dit_train_flops_per_token(m: config_dict.ConfigDict) -> dict[str, float]:
  """Per patch token, so that flops = flops_per_token × tokens as for the LM."""
  forward = dit_forward_flops_per_image(m)
  return {c: 3 * forward[c] / n_tokens(m) for c in CONVENTIONS}


def dit_maxtext_train_flops_per_token(m: config_dict.ConfigDict) -> float:
  """Per patch token: 3 × every matmul of the forward pass (Chinchilla's count less the softmax)."""
  return 3 * 2 * dit_forward_macs(m) / n_tokens(m)


def dit_param_counts(m: config_dict.ConfigDict) -> dict[str, int]:
  """Exact counts; non-embedding leaves out the patch embedding, output layer and class table."""
  D, F, Q = m.d_model, m.mlp_ratio * m.d_model, _patch_features(m)
  block = (6 * D * D + 6 * D) + (4 * D * D + 4 * D) + (2 * D * F + F + D)
  conditioning = m.freq_dim * D + D + D * D + D + (2 * D * D + 2 * D)
  embedding = (Q * D + D) + (D * Q + Q) + ((m.num_classes + 1) * D if m.num_classes else 0)
  nonembedding = m.n_layer * block + conditioning
  return {'total': nonembedding + embedding, 'nonembedding': nonembedding}
