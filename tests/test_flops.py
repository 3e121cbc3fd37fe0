import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from ml_collections import config_dict

from configs import lm
from scaling import flops
from scaling.models.transformer import Transformer


def shape(n_layer, d_model, n_head, d_ff, seq_len, mlp, vocab_size=256, tied=False):
  return config_dict.ConfigDict(dict(n_layer=n_layer, d_model=d_model, n_head=n_head, d_ff=d_ff,
                                     seq_len=seq_len, mlp=mlp, vocab_size=vocab_size,
                                     tied_embeddings=tied))


# Worked by hand in the comments; see the conventions in scaling/flops.py.
A = shape(2, 64, 2, 256, 32, 'gelu')
B = shape(3, 96, 3, 256, 128, 'swiglu')


def test_kaplan_by_hand():
  # A: N = 2*(4*64*64 + 2*64*256) = 98,304; 2N + 2*2*32*64 = 204,800.
  assert flops.lm_forward_flops_per_token(A, 'kaplan') == 204_800
  # B: N = 3*(4*96*96 + 3*96*256) = 331,776; 2N + 2*3*128*96 = 737,280.
  assert flops.lm_forward_flops_per_token(B, 'kaplan') == 737_280


def test_chinchilla_by_hand():
  # A per layer: qkv 24,576 + logits 4,096 + softmax 192 + A.V 4,096 + out 8,192 + MLP 65,536
  # = 106,688; x2 layers + embeddings 32,768 + logits 32,768 = 278,912.
  assert flops.lm_forward_flops_per_token(A, 'chinchilla') == 278_912
  # B per layer: 55,296 + 24,576 + 1,152 + 24,576 + 18,432 + MLP 147,456 = 271,488;
  # x3 + 49,152 + 49,152 = 912,768.
  assert flops.lm_forward_flops_per_token(B, 'chinchilla') == 912_768


def test_training_is_three_forwards():
  train = flops.lm_train_flops_per_token(A)
  assert train == {'kaplan': 3 * 204_800, 'chinchilla': 3 * 278_912}


def test_param_counts_by_hand():
  # A per layer: 4*64*64 + 2*64*256 + 2 norms*64 = 49,280; x2 + final norm 64 = 98,624;
  # untied embeddings 2*256*64 = 32,768.
  assert flops.lm_param_counts(A) == {'total': 131_392, 'nonembedding': 98_624}


def test_unknown_convention_is_an_error():
  with pytest.raises(ValueError, match='convention'):
    flops.lm_forward_flops_per_token(A, 'palm')


def test_forward_matches_xla_cost_analysis():
  cfg = lm.get_config('size=tiny').model
  model = Transformer(cfg, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  tokens = jnp.zeros((2, cfg.seq_len), jnp.int32)
  forward = jax.jit(lambda p, t: nnx.merge(graphdef, p)(t))
  cost = forward.lower(params, tokens).compile().cost_analysis()
  xla_per_token = cost['flops'] / tokens.size
  ours = flops.lm_forward_flops_per_token(cfg, 'chinchilla')
  assert abs(xla_per_token - ours) / ours < 0.10


def test_peak_table_and_mfu():
  assert flops.table_peak_flops('NVIDIA H100 80GB HBM3') == 989e12
  assert flops.table_peak_flops('TPU v5 lite') == 197e12
  assert flops.table_peak_flops('NVIDIA A100-SXM4-40GB') == 312e12
  assert flops.table_peak_flops('some future chip') is None
  # 6 MFLOP/token at 1,000 tokens/s on 2 devices of 10 GFLOP/s each: 6e9 / 2e10.
  assert flops.mfu(6e6, 1000, 1e10, 2) == pytest.approx(0.3)


def test_cpu_peak_is_measured_and_override_wins():
  device = jax.devices()[0]
  measured = flops.peak_flops_per_device(device, 'float32')
  assert 1e8 < measured < 1e14
  assert flops.peak_flops_per_device(device, 'float32', override=5e12) == 5e12
