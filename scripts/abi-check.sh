#!/usr/bin/env bash
# Compares libspikecl's public ABI with the committed baseline abi/libspikecl.abi (abigail-tools)
# and fails on any difference: a change to the exported functions or to the types they reach
# (the plugin structs among them) must be announced by updating the baseline in the same
# commit, after following the versioning rule in spikecl/plugin.h (append only, minor bump):
#     bash scripts/abi-check.sh            check (CI)
#     bash scripts/abi-check.sh --update   write a new baseline, to commit deliberately
# Only the public API counts: abidw sees the types declared in core/include/spikecl.
# The library is built with debug info in build-abi/ (abidw reads DWARF); SPIKECL_ABI_BUILD
# names another folder.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=check
case "${1:-}" in
"") ;;
--update) mode=update ;;
*)
    echo "usage: $0 [--update]" >&2
    exit 2
    ;;
esac
for tool in abidw abidiff; do
    command -v "$tool" >/dev/null || {
        echo "abi-check: $tool not found (Debian: apt-get install abigail-tools)" >&2
        exit 2
    }
done

build=${SPIKECL_ABI_BUILD:-build-abi}
baseline=abi/libspikecl.abi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPIKECL_TESTS=OFF \
    -DSPIKECL_NATIVE=OFF >/dev/null
cmake --build "$build" --target spikecl -j"$(nproc)" >/dev/null
current="$build/libspikecl.abi"
abidw --headers-dir "$PWD/core/include/spikecl" --drop-private-types --no-corpus-path \
    --no-comp-dir-path --short-locs --out-file "$current" "$build/libspikecl.so"

if [ "$mode" = update ]; then
    mkdir -p abi
    cp "$current" "$baseline"
    echo "abi-check: wrote $baseline; commit it with the change it announces"
    exit 0
fi
if [ ! -f "$baseline" ]; then
    echo "abi-check: no baseline $baseline (make one with $0 --update)" >&2
    exit 1
fi
set +e
report=$(abidiff --no-show-locs "$baseline" "$current")
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
    echo "abi-check: libspikecl's public ABI matches $baseline"
    exit 0
fi
echo "$report"
# abidiff's status is a bit set: 1 error, 2 usage, 4 ABI change, 8 incompatible change
if [ $((rc & 3)) -ne 0 ]; then
    echo "abi-check: abidiff failed (status $rc)" >&2
    exit 1
fi
echo "abi-check: libspikecl's public ABI differs from $baseline (abidiff status $rc)." >&2
echo "If the change is intended: follow the versioning rule in spikecl/plugin.h, then run" >&2
echo "'bash scripts/abi-check.sh --update' and commit the new baseline with the change." >&2
exit 1
