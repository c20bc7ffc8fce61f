# shellcheck shell=bash
# Sourced (bash) by the bundle's bin/spikecl and bench/gpu_check.sh: points the bundled ICD
# loader (lib/libOpenCL.so.1, ocl-icd) at every OpenCL driver on this host. Bare GPU hosts often
# carry a vendor's library without the .icd file that names it (NVIDIA's driver mounted under
# /usr/local/nvidia, say), and then the loader sees no platform. So this writes a folder of .icd
# files, one per driver, and sets OCL_ICD_VENDORS to it:
#   - each /etc/OpenCL/vendors/*.icd, as it is;
#   - NVIDIA's, AMD's and Intel's libraries that no .icd file names, from `ldconfig -p` and the
#     usual folders (/usr/local/nvidia/lib64, /usr/lib/x86_64-linux-gnu, /opt/rocm/lib, ...).
# SPIKECL_OPENCL_SOURCES then says where each came from ("name<TAB>library<TAB>origin" lines);
# `bin/spikecl devices` prints it. An OCL_ICD_VENDORS set by the caller is left alone.
# For a check of this logic on a host that has its drivers registered: SPIKECL_ICD_SYSTEM_DIR
# replaces /etc/OpenCL/vendors, SPIKECL_OPENCL_SEARCH (folders, colon-separated) is searched
# before the usual folders.
# spikecl_env_cleanup removes the folder. spikecl_env_libs readies the bundle's own libraries.

spikecl_env_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
spikecl_icd_dir=""

spikecl_env_cleanup() {
    [ -n "$spikecl_icd_dir" ] && rm -rf "$spikecl_icd_dir"
    spikecl_icd_dir=""
}

# The libraries the bundle ships packed or as a fallback (scripts/bundle.sh): OpenBLAS is
# unpacked once into lib/ (or, when the bundle is read-only, into a cache folder put on
# LD_LIBRARY_PATH); libstdc++/libgcc_s of the bundle are used only if the host has none.
spikecl_env_libs() {
    local lib=$spikecl_env_root/lib packed=$spikecl_env_root/lib/libopenblas.so.0.gz dest
    local ldcache
    ldcache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)
    if [ -e "$packed" ] && [ ! -e "$lib/libopenblas.so.0" ]; then
        dest=$lib
        if [ ! -w "$lib" ]; then
            dest=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/spikecl-bundle-$(cat "$spikecl_env_root/VERSION")
            mkdir -p "$dest" || return 1
        fi
        if [ ! -e "$dest/libopenblas.so.0" ]; then
            gzip -dc "$packed" >"$dest/libopenblas.so.0.tmp.$$" &&
                mv "$dest/libopenblas.so.0.tmp.$$" "$dest/libopenblas.so.0" || return 1
        fi
        [ "$dest" = "$lib" ] || export LD_LIBRARY_PATH="$dest${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    local f missing=0
    for f in libstdc++.so.6 libgcc_s.so.1; do
        grep -q "^[[:space:]]*$f " <<<"$ldcache" || missing=1
    done
    if [ "$missing" = 1 ]; then
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$spikecl_env_root/lib/fallback"
    fi
}

spikecl_env_discover() {
    # a parent (gpu_check.sh) that already ran this passes both on
    [ -n "${OCL_ICD_VENDORS:-}" ] && [ -n "${SPIKECL_OPENCL_SOURCES:-}" ] && return 0
    SPIKECL_OPENCL_SOURCES=""
    if [ -n "${OCL_ICD_VENDORS:-}" ]; then
        SPIKECL_OPENCL_SOURCES="(all)	$OCL_ICD_VENDORS	OCL_ICD_VENDORS, set by the caller"
        export SPIKECL_OPENCL_SOURCES
        return 0
    fi
    spikecl_icd_dir=$(mktemp -d "${TMPDIR:-/tmp}/spikecl-icd.XXXXXX") || return 1
    local named="" f lib
    for f in "${SPIKECL_ICD_SYSTEM_DIR:-/etc/OpenCL/vendors}"/*.icd; do
        [ -r "$f" ] || continue
        lib=$(head -n 1 "$f")
        cp "$f" "$spikecl_icd_dir/" || return 1
        named="$named $(basename "$lib")"
        SPIKECL_OPENCL_SOURCES+="$(basename "$f" .icd)	$lib	$f"$'\n'
    done
    # a PoCL carried by the bundle (scripts/bundle.sh --with-pocl), unless one is installed: its
    # libraries (LLVM, clang, ...) go on LD_LIBRARY_PATH and the ld it links kernels with first
    # on PATH
    local pocl_lib=$spikecl_env_root/pocl/lib/x86_64-linux-gnu
    if [ -e "$pocl_lib/libpocl.so.2" ]; then
        case " $named " in
        *" libpocl.so.2 "* | *" libpocl.so "*) ;;
        *)
            echo "$pocl_lib/libpocl.so.2" >"$spikecl_icd_dir/pocl-bundle.icd" || return 1
            SPIKECL_OPENCL_SOURCES+="pocl	$pocl_lib/libpocl.so.2	the bundle (--with-pocl)"$'\n'
            export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$pocl_lib"
            export PATH="$spikecl_env_root/pocl/bin${PATH:+:$PATH}"
            ;;
        esac
    fi
    # vendor: the library file names it ships under (the first one found wins)
    local vendor names n path dir found
    local -A libs=(
        [nvidia]="libnvidia-opencl.so.1"
        [amd]="libamdocl64.so libamdocl-orca64.so"
        [intel]="libigdrcl.so libintelocl.so"
    )
    # shellcheck disable=SC2206 # a list of folders, like PATH
    local dirs=(${SPIKECL_OPENCL_SEARCH:+${SPIKECL_OPENCL_SEARCH//:/ }} /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu
        /usr/lib/x86_64-linux-gnu/intel-opencl /usr/lib64 /usr/lib /opt/rocm/lib
        /opt/rocm/opencl/lib /opt/intel/opencl/lib64)
    local ldcache
    ldcache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)
    for vendor in nvidia amd intel; do
        names=${libs[$vendor]}
        found=""
        for n in $names; do
            case " $named " in *" $n "*) found=named ;; esac
        done
        [ -n "$found" ] && continue
        for n in $names; do
            path=$(awk -v n="$n" '$1 == n && $NF ~ /^\// {print $NF; exit}' <<<"$ldcache")
            if [ -n "$path" ] && [ -e "$path" ]; then
                found="$path	ldconfig -p (no .icd file named it)"
                break
            fi
            for dir in "${dirs[@]}"; do
                if [ -e "$dir/$n" ]; then
                    found="$dir/$n	$dir (no .icd file named it)"
                    break 2
                fi
            done
        done
        [ -z "$found" ] && continue
        path=${found%%	*}
        echo "$path" >"$spikecl_icd_dir/$vendor-found.icd" || return 1
        SPIKECL_OPENCL_SOURCES+="$vendor	$found"$'\n'
        # the driver's own dependencies (libcuda.so.1 beside libnvidia-opencl) must resolve too
        dir=$(dirname "$path")
        case ":${LD_LIBRARY_PATH:-}:" in
        *":$dir:"*) ;;
        *) grep -q " => $dir/" <<<"$ldcache" ||
            export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir" ;;
        esac
    done
    export OCL_ICD_VENDORS=$spikecl_icd_dir
    export SPIKECL_OPENCL_SOURCES=${SPIKECL_OPENCL_SOURCES%$'\n'}
}

spikecl_env_print() {
    echo "OpenCL drivers (OCL_ICD_VENDORS=${OCL_ICD_VENDORS:-unset}):" >&2
    if [ -z "${SPIKECL_OPENCL_SOURCES:-}" ]; then
        echo "  none found: no /etc/OpenCL/vendors/*.icd, no NVIDIA, AMD or Intel library" >&2
        return 0
    fi
    while IFS=$'\t' read -r name lib origin; do
        printf '  %-8s %s  (from %s)\n' "$name" "$lib" "$origin" >&2
    done <<<"$SPIKECL_OPENCL_SOURCES"
}
