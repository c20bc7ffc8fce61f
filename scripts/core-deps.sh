#!/usr/bin/env bash
# Checks the layering of core/ from a build's object files (nm): which core/src file calls which
# (an undefined symbol of one object defined by another), that no set of core files calls each
# other in a loop, and that core/ neither calls symbols defined under backends/ or tools/ nor
# includes their headers. Usage: scripts/core-deps.sh [BUILD_DIR] [-v]  (build first; -v lists
# the edges). Exit 0: clean; 1: a loop or a reference upwards; 2: usage.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
verbose=0
for a in "$@"; do
    case "$a" in
    -v) verbose=1 ;;
    -*) echo "usage: $0 [BUILD_DIR] [-v]" >&2; exit 2 ;;
    *) build=$a ;;
    esac
done
objdir="$build/CMakeFiles/spikecl-obj.dir"
if [ ! -d "$objdir/core/src" ]; then
    echo "core-deps: no objects under $objdir/core/src; build first" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "symbol file" for every global symbol an object defines; "file symbol" for what it needs
defs() { # label object...
    local label=$1
    shift
    for o in "$@"; do
        nm --defined-only -g "$o" | awk -v f="$label${o##*/}" 'NF == 3 { sub(/\.c\.o$/, "", f); print $3, f }'
    done
}
core_objs=("$objdir"/core/src/*.o)
defs core/src/ "${core_objs[@]}" | sort -u >"$tmp/core.defs"
mapfile -t up_objs < <(find "$objdir/backends" "$build/CMakeFiles/spikecl-cli.dir" -name '*.o' 2>/dev/null)
: >"$tmp/up.defs"
for o in "${up_objs[@]}"; do
    rel=${o#"$build"/CMakeFiles/*.dir/}
    # a core file compiled into the CLI as well (fsutil.c) is still core
    case $rel in core/*) continue ;; esac
    defs "$(dirname "$rel")/" "$o" >>"$tmp/up.defs"
done
sort -u -o "$tmp/up.defs" "$tmp/up.defs"

status=0
: >"$tmp/edges"
for o in "${core_objs[@]}"; do
    f="core/src/$(basename "$o" .c.o)"
    nm -u "$o" | awk '{ print $NF }' | sort -u >"$tmp/undef"
    join "$tmp/undef" "$tmp/core.defs" | awk -v f="$f" '$2 != f { print f, $2, $1 }' >>"$tmp/edges"
    if join "$tmp/undef" "$tmp/up.defs" | awk -v f="$f" '{ print f ": calls " $1 " from " $2 }' |
        grep .; then
        status=1
    fi
done

# headers of backends/ and tools/, by path or by bare name (core's include path has backends/cpu)
mapfile -t up_headers < <(find backends tools -name '*.h' -printf '%f\n' | sort -u)
for h in "${up_headers[@]}"; do
    if grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]([^\">]*/)?$h[\">]" core; then
        status=1
    fi
done
if grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]*(backends|tools)/' core; then
    status=1
fi

awk '{ print $1, $2 }' "$tmp/edges" | sort -u >"$tmp/pairs"
if [ "$verbose" = 1 ]; then
    echo "core/src call graph (caller -> callee: symbols):"
    awk '{ k = $1 " -> " $2; s[k] = s[k] (s[k] ? ", " : "") $3 } END { for (k in s) print "  " k ": " s[k] }' \
        "$tmp/edges" | sort
fi
# tsort names the files of a loop on stderr
if ! tsort "$tmp/pairs" >/dev/null 2>"$tmp/tsort"; then
    echo "core-deps: core/src files call each other in a loop:" >&2
    grep -v "input contains a loop" "$tmp/tsort" | sed 's/^tsort: /  /' >&2
    status=1
fi
n_files=${#core_objs[@]}
n_edges=$(wc -l <"$tmp/pairs")
if [ "$status" = 0 ]; then
    echo "core-deps: $n_files core/src files, $n_edges caller->callee pairs: no loop, nothing from backends/ or tools/"
fi
exit "$status"
