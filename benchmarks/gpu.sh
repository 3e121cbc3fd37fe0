#!/usr/bin/env bash
# The GPU numbers of issues 10 and 23 in one call on the device machine: a preflight, then the real
# train step of the two models of benchmarks/gpu_shapes.py timed by benchmarks/train_throughput.py
# (bf16, 30 timed steps each), within 5 minutes. docs/performance.md ("GPU") has the call.
#
#   make device-wheels                          # here, once: .whl/ with what the GPU image lacks
#   bash benchmarks/gpu.sh                      # there, with .whl carried; results under $OUT
#   GPU_SH_DRY_RUN=1 bash benchmarks/gpu.sh     # the same stages on CPU at tiny shapes
#
# Stages, each under its own time limit, all within GPU_SH_BUDGET_S (300 s) counted from the start:
#   preflight  30 s  benchmarks/gpu_preflight.py: versions; cuDNN attention against XLA's, values
#                    and gradients; one large bf16 matmul, this card's real ceiling; the LM's
#                    step-0 loss near ln V
#   lm        150 s  the ~350M LM at sequence 2048, batch 16, with a trace of 3 more steps
#   dit        90 s  DiT-B/2 on 32x32x4 latents, batch 256
# Each stage's JSON line is appended to RESULTS/gpu.jsonl the moment the stage passes, so a stage
# that fails later keeps the lines before it; each stage's output is RESULTS/<stage>.log, this
# script's RESULTS/gpu.log, the LM's trace RESULTS/lm-profile.tar.gz (for `python -m
# benchmarks.profile_step --from_dir`). RESULTS is $OUT where that is set (the device machine's
# folder that comes back), else benchmarks/results/<UTC date and time>-<host>/.
#
# The device machine (/work/.library/device/): one H100 or H200, no network, python3 3.12 with
# jax 0.11 (CUDA), flax, optax, orbax and absl but not ml-collections, which is installed with
# --no-deps into a scratch folder from the wheels in GPU_SH_WHEELS (.whl).
#
# Environment: GPU_SH_PYTHON (python3), GPU_SH_WHEELS (.whl), GPU_SH_BUDGET_S (300),
# GPU_SH_PREFLIGHT_S (30), GPU_SH_LM_S (150), GPU_SH_DIT_S (90) (in the dry run each stage
# defaults to the budget), GPU_SH_LM_BATCH (16), GPU_SH_STEPS (30; the dry run's 2).
# Any failure prints one line, `gpu.sh: error: ...`, on stderr and exits 1.

set -Eeuo pipefail
cd "$(dirname "$0")/.."

PY=${GPU_SH_PYTHON:-python3}
DRY=${GPU_SH_DRY_RUN:-0}
WHEELS=${GPU_SH_WHEELS:-.whl}
BUDGET_S=${GPU_SH_BUDGET_S:-300}
RESULTS=${OUT:-benchmarks/results/$(date -u +%Y-%m-%dT%H%M%SZ)-${HOSTNAME%%.*}}
WORK=$(mktemp -d)
mkdir -p "$RESULTS"

fail() { echo "gpu.sh: error: $*" | tee -a "$RESULTS/gpu.log" >&2; exit 1; }
trap 'fail "line $LINENO: \`$BASH_COMMAND\` exited $?"' ERR
trap 'rm -rf "$WORK"' EXIT
say() { echo "gpu.sh [${SECONDS}s] $*" | tee -a "$RESULTS/gpu.log"; }
# A log's error: a traceback's last line, or absl's FATAL line rather than the help hint after it.
error_line() { { grep -i error "$1" || grep . "$1" || echo "no output in $1"; } | tail -n1; }

if [[ $DRY == 1 ]]; then
  export JAX_PLATFORMS=cpu
  SHAPE=,dry_run=true PREFLIGHT=(--dry_run) STEPS=${GPU_SH_STEPS:-2} WARMUP=1
  LIMIT_PREFLIGHT=${GPU_SH_PREFLIGHT_S:-$BUDGET_S} LIMIT_LM=${GPU_SH_LM_S:-$BUDGET_S}
  LIMIT_DIT=${GPU_SH_DIT_S:-$BUDGET_S}
  say "dry run on CPU with tiny shapes"
else
  SHAPE= PREFLIGHT=() STEPS=${GPU_SH_STEPS:-30} WARMUP=2
  LIMIT_PREFLIGHT=${GPU_SH_PREFLIGHT_S:-30} LIMIT_LM=${GPU_SH_LM_S:-150} LIMIT_DIT=${GPU_SH_DIT_S:-90}
  command -v nvidia-smi >/dev/null ||
    fail "nvidia-smi not found: run this on a host with an NVIDIA GPU (GPU_SH_DRY_RUN=1 checks the script on CPU)"
  # One GPU, the first visible: gpu_shapes' mesh is 1x1x1, so JAX must see one device.
  export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
  export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES%%,*}
  smi=$(nvidia-smi -i "$CUDA_VISIBLE_DEVICES" --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader 2>&1) || fail "nvidia-smi failed: $(head -n1 <<<"$smi")"
  say "GPU $CUDA_VISIBLE_DEVICES: $smi"
  # XLA takes 75% of the memory by default; the LM's batch is sized for more (gpu_shapes.py).
  export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}
fi

# The Python: the modules the benchmarks import, from the wheels where the image lacks them.
command -v "$PY" >/dev/null || fail "no '$PY' on PATH: set GPU_SH_PYTHON to a Python that has jax"
missing() {
  "$PY" - 2>"$WORK/python.log" <<'EOF'
import importlib.util
needed = {'jax': 'jax', 'flax': 'flax', 'optax': 'optax', 'orbax.checkpoint': 'orbax-checkpoint',
          'ml_collections': 'ml-collections', 'absl': 'absl-py', 'numpy': 'numpy', 'yaml': 'PyYAML'}
print(*[package for module, package in needed.items() if not importlib.util.find_spec(module)])
EOF
}
lacking=$(missing) || fail "'$PY' failed: $(error_line "$WORK/python.log")"
if [[ -n $lacking ]]; then
  [[ " $lacking " != *" jax "* ]] || fail "'$PY' has no jax: set GPU_SH_PYTHON to a Python with jax's CUDA plugin"
  compgen -G "$WHEELS/*.whl" >/dev/null ||
    fail "'$PY' lacks $lacking and $WHEELS holds no wheels: run \`make device-wheels\` where pip works and carry $WHEELS"
  say "installing $lacking from $WHEELS"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" "$WHEELS"/*.whl \
      >"$WORK/pip.log" 2>&1 || fail "pip could not install $WHEELS/*.whl: $(error_line "$WORK/pip.log")"
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
  lacking=$(missing) || fail "'$PY' failed: $(error_line "$WORK/python.log")"
  [[ -z $lacking ]] || fail "'$PY' still lacks $lacking: add it to benchmarks/device_wheels.txt"
fi

# stage NAME LIMIT_S ARGS...: runs ARGS (a python -m module) under `timeout`, for at most LIMIT_S
# and what is left of the budget; on success appends its last JSON line to gpu.jsonl.
stage() {
  local name=$1 limit=$2 left=$((BUDGET_S - SECONDS)) rc=0
  shift 2
  ((left >= 10)) || fail "$name: only ${left}s left of GPU_SH_BUDGET_S=${BUDGET_S}s"
  ((limit <= left)) || limit=$left
  say "$name: $PY -m $* (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$PY" -m "$@" >"$WORK/$name.out" 2>"$RESULTS/$name.log" || rc=$?
  ((rc != 124 && rc != 137)) || fail "$name: still running after ${limit}s, its limit (log: $RESULTS/$name.log)"
  ((rc == 0)) || fail "$name: exit $rc: $(error_line "$RESULTS/$name.log") (log: $RESULTS/$name.log)"
  { grep '^{' "$WORK/$name.out" || true; } | tail -n1 >"$WORK/$name.json"
  [[ -s $WORK/$name.json ]] || fail "$name: no JSON line in its output (log: $RESULTS/$name.log)"
  cat "$WORK/$name.json" >>"$RESULTS/gpu.jsonl"
  say "$name: passed; its line is in $RESULTS/gpu.jsonl"
}

stage preflight "$LIMIT_PREFLIGHT" benchmarks.gpu_preflight "${PREFLIGHT[@]}"
ceiling=$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["matmul_ceiling_flops"])' \
          <"$WORK/preflight.json")
TIMED=(--json "--steps=$STEPS" "--warmup=$WARMUP" "--matmul_ceiling=$ceiling")
batch=()
[[ -z ${GPU_SH_LM_BATCH:-} ]] || batch=("--config.batch_size=$GPU_SH_LM_BATCH")
stage lm "$LIMIT_LM" benchmarks.train_throughput "${TIMED[@]}" \
    "--config=benchmarks/gpu_shapes.py:task=lm$SHAPE" "${batch[@]}" "--profile_dir=$WORK/lm-profile"
# The trace jax writes three times over: the xplane and Perfetto copies stay behind (size).
tar -czf "$RESULTS/lm-profile.tar.gz" -C "$WORK" --exclude='*.xplane.pb' \
    --exclude='perfetto_trace.json.gz' lm-profile
stage dit "$LIMIT_DIT" benchmarks.train_throughput "${TIMED[@]}" \
    "--config=benchmarks/gpu_shapes.py:task=dit$SHAPE"

"$PY" - "$RESULTS/gpu.jsonl" <<'EOF' | tee -a "$RESULTS/gpu.log"
import json, sys
for line in open(sys.argv[1]):
  r = json.loads(line)
  if r.get('stage') == 'preflight':
    print(f'{r["device_kind"]}, jax {r["jax"]}: bf16 matmul ceiling {r["matmul_ceiling_flops"]:.3g} '
          f'FLOP/s; {r["attention_kernel"]} attention within {max(r["attention_errors"].values()):.2g} '
          f'of XLA float32; step-0 loss {r["first_train_loss"]:.3f} (ln V {r["ln_vocab"]:.3f})')
    continue
  rate = (f'{r["images_per_s"]:,.0f} images/s' if 'images_per_s' in r else
          f'{r["tokens_per_s"]:,.0f} tokens/s')
  print(f'{r["task"]} {r["size"]} ({r["params"]:,} parameters) batch {r["batch_size"]}: {rate}, '
        f'MFU {r["mfu"]:.1%} chinchilla, {r["mfu_maxtext"]:.1%} maxtext, '
        f'{r["mfu_of_matmul_ceiling"]:.1%} of the measured ceiling; step '
        f'{r["step_s_median"] * 1e3:.1f} ms, compile {r["compile_s"]:.0f} s, peak '
        f'{r["peak_memory_bytes"] / 2**30:.1f} GiB ({r["peak_memory_kind"]})')
EOF
say "done: $RESULTS"
