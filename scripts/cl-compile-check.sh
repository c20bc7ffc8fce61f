#!/usr/bin/env bash
# Compiles every OpenCL program spikecl builds, exactly as the backend assembles it, for three
# vendors' targets (NVIDIA nvptx64, AMD amdgcn gfx90a, SPIR 64) at -O0 and -O2, as strict
# OpenCL C 1.2 (-pedantic-errors). Fails on any compile error and on any call left to a function
# that is neither defined in the program nor an OpenCL built-in: a helper a driver does not
# inline (e.g. a plain `inline` one at -O0) would fail to link on that device.
#
# Usage: scripts/cl-compile-check.sh [-b BUILD_DIR] [PLUGIN.so | KERNELS.cl ...]
#            the built-ins, plus the kernels of these plugins or .cl files
#        scripts/cl-compile-check.sh -d DIR   every *.cl in DIR, as they are (already assembled)
# Needs clang with the NVPTX, AMDGPU and SPIR targets (Debian's clang-15 has them) and a build
# (for build/spikecl-cl-dump). Set CLANG to choose the compiler.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

build=$root/build
dir=
while getopts "b:d:h" opt; do
    case $opt in
    b) build=$OPTARG ;;
    d) dir=$OPTARG ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

clang=${CLANG:-}
if [ -z "$clang" ]; then
    for c in clang-15 clang-16 clang-17 clang-18 clang-19 clang; do
        if command -v "$c" >/dev/null; then clang=$c; break; fi
    done
fi
if [ -z "$clang" ]; then
    echo "cl-compile-check: no clang found (apt-get install clang-15, or set CLANG)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$dir" ]; then
    dir=$work/programs
    if [ ! -x "$build/spikecl-cl-dump" ]; then
        echo "cl-compile-check: $build/spikecl-cl-dump not built (cmake --build $build)" >&2
        exit 2
    fi
    "$build/spikecl-cl-dump" "$dir" "$@" >/dev/null
fi
shopt -s nullglob
programs=("$dir"/*.cl)
if [ ${#programs[@]} -eq 0 ]; then
    echo "cl-compile-check: no .cl files in $dir" >&2
    exit 2
fi

targets=("nvptx64-nvidia-nvcl" "amdgcn-amd-amdhsa -mcpu=gfx90a -nogpulib" "spir64")
common=(-x cl -cl-std=CL1.2 -pedantic-errors -Werror -Xclang -finclude-default-header)
fail=0 n=0
for f in "${programs[@]}"; do
    for t in "${targets[@]}"; do
        read -r -a tflags <<<"-target $t"
        for opt in -O0 -O2; do
            n=$((n + 1))
            name="$(basename "$f" .cl) [${t%% *} $opt]"
            ll=$work/out.ll
            if ! "$clang" "${common[@]}" "${tflags[@]}" $opt -S -emit-llvm -o "$ll" "$f" \
                2>"$work/log"; then
                echo "FAIL $name: compile error"; sed 's/^/    /' "$work/log"; fail=1; continue
            fi
            # built-ins are overloadable, so mangled (_Z...); llvm.* are intrinsics
            undef=$(sed -n 's/^declare .*@\([A-Za-z_.$][A-Za-z0-9_.$]*\)(.*/\1/p' "$ll" |
                grep -v -e '^llvm\.' -e '^_Z' || true)
            if [ -n "$undef" ]; then
                echo "FAIL $name: calls undefined function(s): $(echo $undef)"; fail=1; continue
            fi
            # and through the code generator of the real targets
            if [ "${t%% *}" != spir64 ] &&
                ! "$clang" "${common[@]}" "${tflags[@]}" $opt -S -o "$work/out.s" "$f" \
                    2>"$work/log"; then
                echo "FAIL $name: code generation"; sed 's/^/    /' "$work/log"; fail=1
            fi
        done
    done
done
if [ $fail -ne 0 ]; then
    echo "cl-compile-check: FAILED ($n compiles of ${#programs[@]} programs with $clang)"
    exit 1
fi
echo "cl-compile-check: ${#programs[@]} programs x 3 targets x -O0/-O2 compile cleanly ($clang)"
