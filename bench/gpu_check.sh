#!/usr/bin/env bash
# The GPU check: on a machine with a real GPU and its OpenCL driver, builds spikecl (Release),
# runs the backend comparison tests against the GPU (every layer against the CPU, then whole
# training runs), and benchmarks the two Fashion-MNIST models on the GPU and on the CPU. The
# benchmarks use the device under test, which by default is what `--device opencl` picks (the
# first GPU), so the figures and the checks are about the same device.
#
#   bash bench/gpu_check.sh
#
# Environment:
#   SPIKECL_TEST_DEVICE  the device to check (default: the first "| GPU" line of
#                        `spikecl devices`, else opencl:0:0 with a warning)
#   SPIKECL_BUILD_DIR    build folder (default build/, which scripts/setup-debian.sh installs the
#                        packages for and builds; another folder skips the package step)
#   GPU_CHECK_BATCHES    batches per benchmark pass (default 50)
# Logs go to $SPIKECL_BUILD_DIR/gpu_check/. Stops at the first failure, naming it.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${SPIKECL_BUILD_DIR:-build}
batches=${GPU_CHECK_BATCHES:-50}
t0=$SECONDS
trap 'echo "gpu_check: FAILED (line $LINENO: $BASH_COMMAND) after $((SECONDS - t0)) s" >&2' ERR

stage() { printf '\n== %s (%d s)\n' "$*" $((SECONDS - t0)); }

stage "build ($build, Release)"
if [ "$build" = build ]; then
    # installs what is missing (apt), configures Release and builds into build/
    bash scripts/setup-debian.sh
else
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j"$(nproc)"
fi
cli=$build/spikecl
logs=$build/gpu_check
mkdir -p "$logs"

stage "devices"
"$cli" devices | tee "$logs/devices.txt"
first_gpu() { grep '| GPU' "$logs/devices.txt" | head -n 1 | cut -f 1 || true; }
gpu=$(first_gpu)
# Containers often carry NVIDIA's OpenCL library without the ICD file that names it.
if [ -z "$gpu" ] && [ ! -e /etc/OpenCL/vendors/nvidia.icd ] &&
    ldconfig -p 2>/dev/null | grep -q 'libnvidia-opencl\.so\.1'; then
    echo "gpu_check: libnvidia-opencl.so.1 is installed but no ICD names it; adding nvidia.icd"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo mkdir -p /etc/OpenCL/vendors
    echo libnvidia-opencl.so.1 | $sudo tee /etc/OpenCL/vendors/nvidia.icd >/dev/null
    "$cli" devices | tee "$logs/devices.txt"
    gpu=$(first_gpu)
fi
dev=${SPIKECL_TEST_DEVICE:-${gpu:-opencl:0:0}}
if [ -z "$gpu" ] && [ -z "${SPIKECL_TEST_DEVICE:-}" ]; then
    echo "gpu_check: WARNING: no OpenCL GPU listed; checking $dev instead" >&2
fi
echo "device under test: $dev"

# CI=true: in these tests a missing device is a failure, not a skip.
stage "test_backend_ops on $dev"
SPIKECL_TEST_DEVICE=$dev CI=true "$build/test_backend_ops" --jobs 1 2>&1 |
    tee "$logs/test_backend_ops.txt"
stage "test_opencl_train on $dev"
SPIKECL_TEST_DEVICE=$dev CI=true SPK_TEST_VERBOSE=1 "$build/test_opencl_train" --jobs 1 2>&1 |
    tee "$logs/test_opencl_train.txt"

# The figures come from unprofiled runs; a short second run per model on the device prints the
# per-kernel device times (SPIKECL_PROFILE=1, see README).
summary=()
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$json"; }
for model in models/fmnist_lif_mlp.yaml models/fmnist_poisson_mlp.yaml; do
    name=$(basename "$model" .yaml)
    for d in "$dev" cpu; do
        stage "bench $name on $d ($batches batches)"
        out=$logs/bench-$name-${d//:/_}.txt
        "$cli" bench "$model" --device "$d" --batches "$batches" 2>&1 | tee "$out"
        json=$(grep '^{' "$out" | tail -n 1)
        summary+=("$(printf '%-20s %-14s %12s %12s %8s' "$name" "$d" \
            "$(field train_samples_per_s)" "$(field infer_samples_per_s)" "$(field peak_rss_mb)")")
    done
    stage "per-kernel times of $name on $dev"
    SPIKECL_PROFILE=1 "$cli" bench "$model" --device "$dev" --batches 10 2>&1 |
        tee "$logs/profile-$name.txt" | sed -n '/^kernel /,/^{/p'
done

stage "summary"
grep -h '^\[====\] Synthesis' "$logs"/test_*.txt | sed 's/^/tests: /'
grep -h '^cli: \|^ten steps\|^one step\|^poisson:' "$logs/test_opencl_train.txt" |
    sed 's/^/  /' || true
printf '%-20s %-14s %12s %12s %8s\n' model device "train/s" "infer/s" "RSS MB"
printf '%s\n' "${summary[@]}"
echo "gpu_check: OK on $dev in $((SECONDS - t0)) s (logs in $logs)"
