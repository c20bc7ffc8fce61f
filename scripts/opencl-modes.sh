#!/usr/bin/env bash
# Runs the OpenCL tests on the default device (PoCL in CI) in the two modes a GPU can differ
# from PoCL's defaults in: kernels built with -cl-opt-disable (nothing inlined: a helper without
# a definition fails to link) and fresh device buffers filled with NaN (GPU memory is not
# zeroed: a kernel reading what nobody wrote shows up as NaN). The default mode is the plain
# ctest run. Usage: scripts/opencl-modes.sh [BUILD_DIR] [extra ctest args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
tests='opencl|backend_ops'

cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
status=0
for mode in "SPIKECL_CL_BUILD_OPTIONS=-cl-opt-disable" "SPIKECL_CL_POISON=1"; do
    echo "== opencl-modes: $mode"
    start=$(date +%s)
    if ! env "$mode" SPIKECL_CACHE_DIR="$cache/${mode%%=*}" \
        ctest --test-dir "$build" -R "$tests" --output-on-failure "$@"; then
        status=1
    fi
    echo "== opencl-modes: $mode took $(($(date +%s) - start)) s"
done
exit $status
