#!/usr/bin/env bash
# Adds this host's PoCL to a bundle (scripts/bundle.sh --with-pocl), as BUNDLE/pocl:
#   lib/x86_64-linux-gnu/libpocl.so.2 and pocl/ (its device drivers), and every library they
#     load beyond glibc (LLVM, clang, hwloc, z3, ICU, ...), found with ldd;
#   share/pocl/ (headers and kernel bitcode: Debian's PoCL is built relocatable and looks for
#     them in ../../share/pocl from its library);
#   bin/ld (a wrapper) and bin/ld.bfd with its libraries: PoCL links every kernel into a shared
#     object by running `ld` (clang's driver finds it on PATH);
#   linklib/: what that link asks for with -lc -lm -lgcc -lgcc_s: linker scripts that name the
#     host's libc.so.6, libm.so.6 and libgcc_s.so.1 (present on any glibc host) and a copy of
#     libgcc.a, so the host needs no libc6-dev or libgcc-12-dev.
# bin/spikecl-env.sh writes an .icd file for it and puts lib/ on LD_LIBRARY_PATH and bin/ on
# PATH when no installed driver is found.
set -euo pipefail
out=$1
pocl=$(readlink -f /usr/lib/x86_64-linux-gnu/libpocl.so.2 2>/dev/null || true)
if [ -z "$pocl" ] || [ ! -e "$pocl" ]; then
    echo "bundle: --with-pocl needs PoCL installed here (libpocl2, pocl-opencl-icd)" >&2
    exit 1
fi
libgcc=$(gcc -print-libgcc-file-name)
ldbin=$(readlink -f "$(command -v ld.bfd)")
root=$out/pocl
lib=$root/lib/x86_64-linux-gnu
rm -rf "$root"
mkdir -p "$lib/pocl" "$root/share" "$root/bin" "$root/linklib"
cp "$pocl" "$lib/libpocl.so.2"
cp /usr/lib/x86_64-linux-gnu/pocl/libpocl-devices-*.so "$lib/pocl/"
cp -r /usr/share/pocl "$root/share/pocl"
cp "$ldbin" "$root/bin/ld.bfd"
cat >"$root/bin/ld" <<'EOF'
#!/bin/sh
# GNU ld for PoCL's kernel links, with the bundle's linklib/ searched first (see add-pocl.sh)
here=$(dirname "$(readlink -f "$0")")
exec "$here/ld.bfd" -L"$here/../linklib" "$@"
EOF
chmod +x "$root/bin/ld"
# -l:NAME searches the -L folders PoCL passes (/lib/x86_64-linux-gnu among them) for NAME
for l in c m gcc_s; do
    v=6
    [ $l = gcc_s ] && v=1
    echo "INPUT(-l:lib$l.so.$v)" >"$root/linklib/lib$l.so"
done
cp "$libgcc" "$root/linklib/libgcc.a"

glibc='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil)\.so'
ldd "$lib/libpocl.so.2" "$lib"/pocl/*.so "$root/bin/ld.bfd" 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
        [[ $name =~ $glibc ]] && continue
        # libstdc++/libgcc_s: the bundle's fallback or the host's, as for spikecl itself
        case $name in libstdc++.so.6 | libgcc_s.so.1) continue ;; esac
        [ -e "$lib/$name" ] || cp -L "$path" "$lib/$name"
    done
if LD_LIBRARY_PATH=$lib ldd "$lib/libpocl.so.2" "$root/bin/ld.bfd" | grep -q 'not found'; then
    LD_LIBRARY_PATH=$lib ldd "$lib/libpocl.so.2" "$root/bin/ld.bfd" | grep 'not found' >&2
    echo "bundle: a library of PoCL was not found" >&2
    exit 1
fi
strip --strip-unneeded "$lib"/*.so* "$lib"/pocl/*.so "$root/bin/ld.bfd" 2>/dev/null || true
echo "bundle: added PoCL ($(basename "$pocl")): $(du -sm "$root" | cut -f 1) MiB in $root"
