"""Accelerators the planner knows: peak dense bf16 FLOP/s and board power per chip.

Sources are listed in docs/analysis.md. The training side keeps its own peak table for MFU
(scaling/flops.py); analysis may not import it, so the peaks are repeated here. Google publishes no
power figure for TPU v5e or v5p: those watts assume TPU v4's published FLOP/s per watt
(275 TFLOP/s at 192 W) and are marked estimates; pass --watts to use a measured number.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Device:
  peak_flops: float  # dense bf16 FLOP/s per chip, no sparsity
  watts: float  # maximum board (or chip) power
  watts_estimated: bool = False


_V4_FLOPS_PER_WATT = 275e12 / 192

DEVICES = {
    'h100': Device(989e12, 700),  # SXM5
    'h200': Device(989e12, 700),  # SXM
    'a100': Device(312e12, 400),  # SXM4
    'tpu-v4': Device(275e12, 192),
    'tpu-v5e': Device(197e12, 197e12 / _V4_FLOPS_PER_WATT, watts_estimated=True),
    'tpu-v5p': Device(459e12, 459e12 / _V4_FLOPS_PER_WATT, watts_estimated=True),
}
