"""The one table of accelerators: dense peak FLOP/s per compute dtype, board power, sources.

Pure Python data, so that the planner (analysis.plan) reads it without JAX and training's MFU
(scaling.flops) imports it; there is no second copy.

Peaks are dense (no structured sparsity): half of NVIDIA's "with sparsity" tensor-core figures,
rounded down to the TFLOP/s. The 'float32' peak is what a float32 matmul runs at under JAX's
default matmul precision, which is how a float32 run of this code computes: TF32 tensor cores on
A100, H100 and H200 (jax.lax.Precision.DEFAULT: "uses tensorfloat32 if available"), a bfloat16
pass on TPUs, so there it equals the bfloat16 peak. Setting jax_default_matmul_precision=highest
moves float32 matmuls to plain FP32 (H100 SXM: 67 TFLOP/s); pass --config.peak_flops then.

`device_kind` is the string JAX reports (jax.Device.device_kind); `for_device_kind` tells the H100
SXM ('NVIDIA H100 80GB HBM3') from the PCIe ('NVIDIA H100 PCIe') and NVL parts by it.

Google publishes no power figure for TPU v5e, v5p or v6e: those watts assume TPU v4's published
FLOP/s per watt (275 TFLOP/s at 192 W) and are marked estimates; pass --watts to use a measured
number.
"""

import dataclasses
import re

DTYPES = ('bfloat16', 'float32')


@dataclasses.dataclass(frozen=True)
class Device:
  kind: str  # regular expression matched against the lowercased jax device_kind
  peaks: dict[str, float]  # dense FLOP/s per chip by compute dtype (see DTYPES)
  watts: float  # maximum board (or chip) power
  source: str
  watts_estimated: bool = False

  @property
  def peak_flops(self) -> float:
    """The bfloat16 peak: the planner's assumption, since large runs compute in bfloat16."""
    return self.peaks['bfloat16']


_V4_FLOPS_PER_WATT = 275e12 / 192


def _tpu(kind: str, peak: float, watts: float | None, source: str) -> Device:
  estimated = watts is None
  return Device(kind, {'bfloat16': peak, 'float32': peak},
                peak / _V4_FLOPS_PER_WATT if estimated else watts, source, estimated)


# Order matters: the first entry whose `kind` matches wins, so each PCIe or NVL part comes before
# the SXM part of the same name.
DEVICES = {
    'h100-pcie': Device(r'h100.*pcie', {'bfloat16': 756e12, 'float32': 378e12}, 350,
                        'NVIDIA H100 Tensor Core GPU datasheet, H100 PCIe: BF16 1,513 and TF32 756 '
                        'TFLOPS with sparsity; max TDP 300-350 W'),
    'h100-nvl': Device(r'h100.*nvl', {'bfloat16': 835e12, 'float32': 417e12}, 400,
                       'NVIDIA H100 Tensor Core GPU datasheet, H100 NVL: BF16 1,671 and TF32 835 '
                       'TFLOPS with sparsity; max TDP 350-400 W'),
    'h100': Device(r'h100', {'bfloat16': 989e12, 'float32': 494e12}, 700,
                   'NVIDIA H100 Tensor Core GPU datasheet, H100 SXM: BF16 1,979 and TF32 989 TFLOPS '
                   'with sparsity; max TDP up to 700 W'),
    'h200-nvl': Device(r'h200.*nvl', {'bfloat16': 835e12, 'float32': 417e12}, 600,
                       'NVIDIA H200 Tensor Core GPU datasheet, H200 NVL: BF16 1,671 and TF32 835 '
                       'TFLOPS with sparsity; max TDP up to 600 W'),
    'h200': Device(r'h200', {'bfloat16': 989e12, 'float32': 494e12}, 700,
                   'NVIDIA H200 Tensor Core GPU datasheet, H200 SXM: BF16 1,979 and TF32 989 TFLOPS '
                   'with sparsity; max TDP up to 700 W'),
    'a100-pcie': Device(r'a100.*pcie', {'bfloat16': 312e12, 'float32': 156e12}, 300,
                        'NVIDIA A100 Tensor Core GPU datasheet, A100 80GB PCIe: BF16 312 and TF32 '
                        '156 TFLOPS dense; max TDP 300 W (250 W for the 40GB PCIe card)'),
    'a100': Device(r'a100', {'bfloat16': 312e12, 'float32': 156e12}, 400,
                   'NVIDIA A100 Tensor Core GPU datasheet, A100 SXM: BF16 312 and TF32 156 TFLOPS '
                   'dense; max TDP 400 W'),
    'tpu-v4': _tpu(r'tpu v4', 275e12, 192,
                   'Google Cloud TPU v4 documentation (275 TFLOPS bf16 per chip); Jouppi et al. '
                   '2023, "TPU v4: An Optically Reconfigurable Supercomputer for Machine Learning", '
                   'ISCA (192 W maximum chip power)'),
    'tpu-v5e': _tpu(r'tpu v5 ?lite|tpu v5e', 197e12, None,
                    'Google Cloud TPU v5e documentation (197 TFLOPS bf16 per chip); no published '
                    'power. JAX reports the chip as "TPU v5 lite"'),
    'tpu-v5p': _tpu(r'tpu v5', 459e12, None,
                    'Google Cloud TPU v5p documentation (459 TFLOPS bf16 per chip); no published '
                    'power'),
    'tpu-v6e': _tpu(r'tpu v6 ?lite|tpu v6e', 918e12, None,
                    'Google Cloud TPU v6e (Trillium) documentation (918 TFLOPS bf16 per chip); no '
                    'published power. JAX reports the chip as "TPU v6 lite"'),
}


def for_device_kind(device_kind: str) -> tuple[str, Device] | None:
  """(name, entry) of the first table entry matching a JAX device_kind; None when unknown."""
  kind = device_kind.lower()
  return next(((name, d) for name, d in DEVICES.items() if re.search(d.kind, kind)), None)
