#!/usr/bin/env bash
# The GPU check, run from the bundle that scripts/bundle.sh makes (no compiler, no packages):
# the OpenCL drivers found (bin/spikecl-env.sh), `spikecl devices`, the backend parity tests
# against the device under test (every layer against the CPU, then ten training steps and whole
# training runs against the CPU; uploads that overlap compute against blocking ones), and
# `spikecl bench` of the Fashion-MNIST models on that device (also with blocking uploads) and on
# the CPU, with the per-kernel device times of a short profiled run. Logs and one JSON
# summary (summary.json) go to the folder given; every stage runs even if one before failed.
#
#   bash dist/spikecl-<version>-linux-x86_64/bench/gpu_check.sh OUT_DIR
#   bash bench/gpu_check.sh OUT_DIR    # in a checkout: builds the bundle first, then runs it
#
# On a bare GPU host, copy the bundle folder there (it is ignored by git) and run its copy of
# this script; the figures, the parity results and the logs are all under OUT_DIR.
#
# Environment:
#   SPIKECL_TEST_DEVICE  the device to check (default: the first "| GPU" line of
#                        `spikecl devices`, else opencl:0:0 with a warning)
#   GPU_CHECK_BATCHES    batches per benchmark pass (default 50)
#   GPU_CHECK_MODELS     model names under models/ (default: fmnist_lif_mlp fmnist_poisson_mlp
#                        fmnist_conv)
#   GPU_CHECK_SKIP_TESTS =1 skips the parity tests (benchmarks only)
# Exit status 0 when every stage passed, 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: gpu_check.sh OUT_DIR" >&2
    exit 2
fi
if [ ! -x "$here/libexec/spikecl" ]; then # a checkout: make the bundle, run its copy
    bash "$here/scripts/bundle.sh" || exit 1
    version=$(sed -n 's/^project(spikecl VERSION \([0-9.]*\).*/\1/p' "$here/CMakeLists.txt")
    exec bash "$here/dist/spikecl-$version-linux-x86_64/bench/gpu_check.sh" "$1"
fi
mkdir -p "$1" || exit 2
logs=$(cd "$1" && pwd)
cli=$here/bin/spikecl
batches=${GPU_CHECK_BATCHES:-50}
models=${GPU_CHECK_MODELS:-fmnist_lif_mlp fmnist_poisson_mlp fmnist_conv}
t0=$SECONDS
failed=()
stage() { printf '\n== %s (%d s)\n' "$*" $((SECONDS - t0)); }
# a JSON string from any text (backslash, quote, control characters)
jstr() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/}
    printf '"%s"' "$s"
}

# shellcheck source=../scripts/bundle/spikecl-env.sh disable=SC1091 # the bundle's copy
. "$here/bin/spikecl-env.sh"
spikecl_env_libs || { echo "gpu_check: cannot unpack the bundle's OpenBLAS" >&2; exit 1; }
trap spikecl_env_cleanup EXIT
spikecl_env_discover || { echo "gpu_check: cannot write the OpenCL vendor folder" >&2; exit 1; }

stage "host"
{
    echo "bundle: $here ($(cat "$here/VERSION"), needs glibc >= $(cat "$here/GLIBC_MIN"))"
    echo "host glibc: $(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)"
    uname -a
    nvidia-smi -L 2>/dev/null || true
} 2>&1 | tee "$logs/host.txt"
spikecl_env_print 2>&1 | tee "$logs/opencl_sources.txt"
host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | cut -d ' ' -f 2)
need_glibc=$(cat "$here/GLIBC_MIN")
if [ -n "$host_glibc" ] &&
    [ "$(printf '%s\n' "$need_glibc" "$host_glibc" | sort -V | head -n 1)" != "$need_glibc" ]; then
    echo "gpu_check: this host's glibc $host_glibc is older than the $need_glibc the bundle needs" >&2
    exit 1
fi

stage "devices"
"$cli" devices >"$logs/devices.txt" 2>&1 || failed+=(devices)
cat "$logs/devices.txt"
gpu=$(grep '| GPU' "$logs/devices.txt" | head -n 1 | cut -f 1)
dev=${SPIKECL_TEST_DEVICE:-${gpu:-opencl:0:0}}
if [ -z "$gpu" ] && [ -z "${SPIKECL_TEST_DEVICE:-}" ]; then
    echo "gpu_check: WARNING: no OpenCL GPU listed; checking $dev instead" >&2
fi
echo "device under test: $dev"

# CI=true: in these tests a missing device is a failure, not a skip. The tests run the
# bundle's CLI from the bundle's root, where models/ point at the bundled data.
tests_json=()
for t in test_backend_ops test_opencl_train test_opencl_overlap; do
    [ "${GPU_CHECK_SKIP_TESTS:-0}" = 1 ] && break
    stage "$t on $dev"
    ts=$SECONDS
    SPIKECL_TEST_DEVICE=$dev CI=true SPK_TEST_VERBOSE=1 SPIKECL_TEST_CLI=$cli \
        SPIKECL_TEST_SOURCE_DIR=$here "$here/tests/$t" --jobs 1 >"$logs/$t.txt" 2>&1
    rc=$?
    tail -n 5 "$logs/$t.txt"
    [ $rc = 0 ] || failed+=("$t")
    synth=$(grep '^\[====\] Synthesis' "$logs/$t.txt" | tail -n 1)
    tests_json+=("$(printf '{"name": "%s", "exit": %d, "seconds": %d, "synthesis": %s}' \
        "$t" "$rc" $((SECONDS - ts)) "$(jstr "$synth")")")
done

# The figures come from unprofiled runs; a short second run per model on the device prints the
# per-kernel device times (SPIKECL_PROFILE=1, see README), the GEMM share among them.
bench_json=()
for name in $models; do
    model=$here/models/$name.yaml
    if [ ! -e "$model" ]; then
        echo "gpu_check: no model $name in the bundle; skipped" >&2
        continue
    fi
    for d in "$dev" cpu; do
        stage "bench $name on $d ($batches batches)"
        out=$logs/bench-$name-${d//:/_}.txt
        "$cli" bench "$model" --device "$d" --batches "$batches" >"$out" 2>&1
        rc=$?
        tail -n 3 "$out"
        json=$(grep '^{' "$out" | tail -n 1)
        [ $rc = 0 ] && [ -n "$json" ] || failed+=("bench $name $d")
        bench_json+=("$(printf '{"model": "%s", "device": "%s", "exit": %d, "result": %s}' \
            "$name" "$d" "$rc" "${json:-null}")")
    done
    # the same on the device with blocking uploads: what the overlap of uploads gains
    stage "bench $name on $dev with SPIKECL_CL_OVERLAP=0"
    out=$logs/bench-$name-${dev//:/_}-blocking.txt
    SPIKECL_CL_OVERLAP=0 "$cli" bench "$model" --device "$dev" --batches "$batches" >"$out" 2>&1
    rc=$?
    tail -n 1 "$out"
    json=$(grep '^{' "$out" | tail -n 1)
    [ $rc = 0 ] && [ -n "$json" ] || failed+=("bench $name $dev blocking")
    bench_json+=("$(printf '{"model": "%s", "device": "%s", "exit": %d, "result": %s}' \
        "$name" "$dev SPIKECL_CL_OVERLAP=0" "$rc" "${json:-null}")")
    stage "per-kernel times of $name on $dev"
    SPIKECL_PROFILE=1 "$cli" bench "$model" --device "$dev" --batches 10 \
        >"$logs/profile-$name.txt" 2>&1 || failed+=("profile $name")
    sed -n '/^kernel /,/^{/p' "$logs/profile-$name.txt"
done

stage "summary"
join() {
    local IFS=,
    echo "$*"
}
fails=()
for f in "${failed[@]}"; do fails+=("$(jstr "$f")"); done
{
    printf '{"version": %s, "device": %s, "opencl_sources": %s, "seconds": %d,\n' \
        "$(jstr "$(cat "$here/VERSION")")" "$(jstr "$dev")" \
        "$(jstr "${SPIKECL_OPENCL_SOURCES:-}")" $((SECONDS - t0))
    printf ' "tests": [%s],\n' "$(join "${tests_json[@]}")"
    printf ' "bench": [%s],\n' "$(join "${bench_json[@]}")"
    printf ' "failed": [%s], "ok": %s}\n' "$(join "${fails[@]}")" \
        "$([ ${#failed[@]} = 0 ] && echo true || echo false)"
} >"$logs/summary.json"
cat "$logs/summary.json"
if [ ${#failed[@]} = 0 ]; then
    echo "gpu_check: OK on $dev in $((SECONDS - t0)) s (logs in $logs)"
else
    echo "gpu_check: FAILED (${failed[*]}) on $dev after $((SECONDS - t0)) s (logs in $logs)" >&2
    exit 1
fi
