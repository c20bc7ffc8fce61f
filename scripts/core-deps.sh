#!/usr/bin/env bash
# Which core file calls which, read from the object files rather than from the includes: an edge
# "a b" means a symbol that a.o leaves undefined is defined by b.o. Prints the edges and fails
# (exit 1, naming the files) when some set of core files call each other in a loop.
#     bash scripts/core-deps.sh [build folder]     (default: build)
# Needs nm (binutils), join, tsort (coreutils).
set -euo pipefail
cd "$(dirname "$0")/.."
objdir="${1:-build}/CMakeFiles/spikecl-obj.dir/core/src"
shopt -s nullglob
objs=("$objdir"/*.o)
if [ ${#objs[@]} -eq 0 ]; then
    echo "$0: no object files in $objdir (build first)" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for o in "${objs[@]}"; do
    f=$(basename "$o" .c.o)
    nm --defined-only "$o" | awk -v f="$f" '$2 ~ /^[TDBRVWGS]$/ {print $3, f}'
done | sort -u >"$tmp/defs"
for o in "${objs[@]}"; do
    f=$(basename "$o" .c.o)
    nm --undefined-only "$o" | awk -v f="$f" '{print $2, f}'
done | sort -u >"$tmp/undefs"
join "$tmp/undefs" "$tmp/defs" | awk '{print $2, $3}' | sort -u >"$tmp/edges"
cat "$tmp/edges"
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/loop"; then
    echo "core files that call each other in a loop:" >&2
    sed -n 's/^tsort: //p' "$tmp/loop" | grep -v 'input contains a loop' >&2
    exit 1
fi
echo "no loops among the ${#objs[@]} core object files"
