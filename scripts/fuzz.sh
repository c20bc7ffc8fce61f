#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang, ASan + UBSan, portable, CPU backend only)
# in build-fuzz/ and runs each for a given time, starting from its checked-in seed corpus.
# Usage: bash scripts/fuzz.sh HARNESS|all SECONDS [extra libFuzzer flags]
#   HARNESS: model, idx, safetensors, events or nir. New inputs go to build-fuzz/corpus/HARNESS (the
#   checked-in seeds stay as they are); a crash is written to build-fuzz/crashes/HARNESS/ and fails the run:
#   keep it as tests/fuzz/regressions/HARNESS/<name> once it is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

# "all" leaves out nir: it mostly explores libhdf5 1.10.8's own parsing of damaged files, which
# crashes inside libhdf5 (tests/fuzz/README); run it by name
harnesses=(model idx safetensors events)
which=${1:-}
seconds=${2:-}
if [ -z "$which" ] || [ -z "$seconds" ]; then
    echo "usage: $0 model|idx|safetensors|events|nir|all SECONDS [libFuzzer flags]" >&2
    exit 2
fi
shift 2
if [ "$which" = all ]; then
    run=("${harnesses[@]}")
else
    case " ${harnesses[*]} nir " in *" $which "*) run=("$which") ;;
        *) echo "fuzz.sh: unknown harness '$which' (model, idx, safetensors, events, nir, all)" >&2; exit 2 ;;
    esac
fi

# clang's libFuzzer runtime comes with libclang-rt-14-dev (Debian 12), OpenMP with libomp-dev.
CC=${CC:-clang} cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPIKECL_FUZZ=ON \
    -DSPIKECL_TESTS=OFF -DSPIKECL_OPENCL=OFF -DSPIKECL_NATIVE=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${run[@]/#/fuzz_}"

# Leaks are errors like any other memory bug; a report stops the run at once.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
# ... except libhdf5's own on damaged files (tests/fuzz/lsan-libhdf5.supp says why)
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/fuzz/lsan-libhdf5.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
# Each input goes through a scratch file (the readers take paths): on tmpfs that is ~15x faster
# than on a disk-backed /tmp.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
status=0
for h in "${run[@]}"; do
    mkdir -p "build-fuzz/corpus/$h" "build-fuzz/crashes/$h"
    echo "fuzz.sh: $h for ${seconds}s"
    # -rss_limit_mb bounds memory on a shared machine; -max_len covers the largest seed.
    if ! build-fuzz/fuzz_"$h" -max_total_time="$seconds" -print_final_stats=1 \
            -rss_limit_mb=2048 -max_len=65536 -timeout=20 \
            -artifact_prefix="build-fuzz/crashes/$h/" "$@" \
            "build-fuzz/corpus/$h" "tests/fuzz/corpus/$h"; then
        echo "fuzz.sh: $h FAILED; the input is in build-fuzz/crashes/$h/" >&2
        status=1
    fi
done
exit $status
