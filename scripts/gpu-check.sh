#!/usr/bin/env bash
# The GPU checks of docs/backends.md on a machine with an NVIDIA GPU: `s2s backends`, the backend
# parity test and `s2s bench` on cuda, wgpu (Vulkan) and tch (CUDA), beside ndarray and flex,
# then training on one GPU and on all of them (training.devices).
#
#   scripts/gpu-check.sh                         # builds here (needs cargo), then runs
#   scripts/gpu-check.sh --bin B --parity P      # runs prebuilt binaries (no cargo needed)
#   options: --config FILE (default configs/quickstart.toml)  --steps N (default 20)
#            --out DIR (default runs/gpu-check-<UTC time>)     --torch-lib DIR
#
# Prebuilt binaries come from a machine with cargo (x86-64 Linux, same glibc or older):
#   source "$(scripts/setup-tch.sh --env)"
#   cargo build --release --features flex,wgpu,cuda,tch
#   cargo test --release --features flex,wgpu,cuda,tch --test backend_parity --no-run
#   # B = target/release/s2s, P = the target/release/deps/backend_parity-* cargo printed
#
# libtorch: a binary built with `tch` loads the libtorch it was built against (2.9.0) at start.
# The script looks for it in this order: --torch-lib DIR; the venv of scripts/setup-tch.sh; the
# machine's own PyTorch (`python3 -c 'import torch'`). The machine's torch must be 2.9.x for a
# binary built against 2.9.0 (libtorch has no stable ABI); where it differs, build on that machine
# against its torch instead, with cargo there:
#   LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1 cargo build --release --features tch,…
#   (with that python first on PATH; tch 0.22 targets 2.9, so other versions may fail to compile)
# and put its lib/ on LD_LIBRARY_PATH, which this script does for the torch it finds.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" parity="" config=configs/quickstart.toml steps=20 torch_lib=""
out=runs/gpu-check-$(date -u +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --parity) parity=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --torch-lib) torch_lib=$2; shift 2 ;;
    *) echo "unknown option $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done

command -v nvidia-smi > /dev/null || { echo "no nvidia-smi: this script is for a machine with an NVIDIA GPU" >&2; exit 1; }
mkdir -p "$out"
log() { printf '\n== %s\n' "$*" | tee -a "$out/gpu-check.log"; }

# libtorch for the tch backend.
if [ -z "$torch_lib" ]; then
  env_file=$(scripts/setup-tch.sh --env 2> /dev/null || true)
  if [ -n "$env_file" ]; then
    # shellcheck disable=SC1090
    source "$env_file"
  elif python3 -c 'import torch' 2> /dev/null; then
    torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
    version=$(python3 -c 'import torch; print(torch.__version__)')
    case "$version" in
      2.9.*) ;;
      *) echo "warning: this machine's torch is $version, the binary was built against 2.9.0; tch may fail to load (see the top of $0)" >&2 ;;
    esac
  fi
fi
[ -n "$torch_lib" ] && export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 0700 "$XDG_RUNTIME_DIR"

features=flex,wgpu,cuda,tch
if [ -z "$bin" ]; then
  command -v cargo > /dev/null || { echo "no cargo here: pass --bin and --parity built elsewhere" >&2; exit 1; }
  log "build --features $features"
  cargo build --release --features "$features"
  bin=${CARGO_TARGET_DIR:-target}/release/s2s
fi
if [ -z "$parity" ] && command -v cargo > /dev/null; then
  parity=$(cargo test --release --features "$features" --test backend_parity --no-run \
    --message-format=json 2> /dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "backend_parity":
        print(m["executable"])')
fi

log "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$out/gpu-check.log"

log "s2s backends"
"$bin" backends 2>&1 | tee "$out/backends.txt" | tee -a "$out/gpu-check.log"

status=0
if [ -n "$parity" ]; then
  log "parity test (cuda, wgpu, tch on CUDA against ndarray)"
  S2S_REQUIRE_BACKENDS=ndarray,flex,cuda,wgpu,tch-cuda "$parity" --test-threads 1 --nocapture 2>&1 \
    | tee "$out/parity.txt" | tee -a "$out/gpu-check.log" || status=1
else
  echo "no parity test binary (--parity): skipped" | tee -a "$out/gpu-check.log"
fi

log "s2s bench on $config"
"$bin" bench --config "$config" --backends ndarray,flex,cuda,wgpu,tch --steps "$steps" \
  --out "$out/bench" 2>&1 | tee -a "$out/gpu-check.log" || status=1

# training.devices: one epoch of a smaller run on GPU 0 alone and on every GPU (each batch split
# over them); the two validation losses should agree to float tolerance. With one GPU only the
# first run is made (the split over distinct devices needs two).
gpus=$(nvidia-smi -L | wc -l)
all=$(seq -s, 0 $((gpus - 1)))
log "multi-device training on cuda: devices [0] and [$all] ($gpus GPUs)"
for devices in 0 "$all"; do
  [ "$devices" = 0 ] || [ "$gpus" -gt 1 ] || { echo "one GPU: no multi-device run" | tee -a "$out/gpu-check.log"; break; }
  "$bin" train "$config" --backend cuda --no-tui --devices "$devices" \
    --set training.epochs=1 --set data.max_train_pairs=2000 --set training.metric_pairs=0 \
    --set "run_dir=\"$out/devices-${devices//,/-}\"" 2>&1 | tail -3 | tee -a "$out/gpu-check.log" || status=1
done

log "done: $out (status $status)"
exit $status
