#!/usr/bin/env bash
# Builds a relocatable spikecl folder for a bare x86-64 Linux host (no package manager, no
# compiler): the CLI, libspikecl, the OpenCL parity tests, the example plugin, the models, a
# Fashion-MNIST subset, and every shared library they load beyond glibc (libOpenCL.so.1 from
# ocl-icd, CLBlast, OpenBLAS, libyaml, jansson, zlib, libgomp, libstdc++, Criterion, ...).
#
#   bash scripts/bundle.sh [--with-pocl] [OUT_DIR]   # default dist/spikecl-<version>-linux-x86_64
#
# --with-pocl adds pocl/: this host's PoCL (Debian's libpocl2, relocatable: it finds its kernel
# library in ../../share/pocl beside itself) with LLVM, clang and every other library it loads,
# and GNU ld, which PoCL runs to link each kernel (pocl/bin/ld adds pocl/linklib, which names
# the host's libc, libm and libgcc_s and carries libgcc.a, so no -dev package is needed).
# bin/spikecl-env.sh registers it as one more OpenCL driver. It is about 300 MiB (libLLVM alone
# is 112), so it is not in the default bundle and the 48 MiB limit does not apply: it is for
# checking the OpenCL path on a host without any driver (scripts/bundle-chroot.sh).
#
# Every executable is linked with DT_RPATH $ORIGIN/../lib (not RUNPATH: an executable's RPATH
# also covers the libraries' own dependencies, which carry no run path of their own). Built
# without -march=native. On the host: bin/spikecl (a launcher that finds the GPU vendors'
# OpenCL libraries, see bin/spikecl-env.sh) and bench/gpu_check.sh.
# Environment: SPIKECL_BUNDLE_BUILD (build folder, default build-bundle), FMNIST (the folder of
# the Fashion-MNIST IDX .gz files, default /usr/share/datasets/fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
t0=$SECONDS
version=$(sed -n 's/^project(spikecl VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
with_pocl=0
if [ "${1:-}" = "--with-pocl" ]; then
    with_pocl=1
    shift
fi
out=${1:-dist/spikecl-$version-linux-x86_64}
build=${SPIKECL_BUNDLE_BUILD:-build-bundle}
fmnist=${FMNIST:-/usr/share/datasets/fashion-mnist}
jobs=${BUNDLE_JOBS:-$(nproc)}
max_mib=48

# CMake writes the run path itself (it escapes $ORIGIN for make); lib/../lib is lib/ again, so
# one run path serves the executables and libspikecl.
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic linker, not the shell
nice -n 10 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPIKECL_NATIVE=OFF -DSPIKECL_NIR=OFF \
    -DSPIKECL_TESTS=ON -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH='$ORIGIN/../lib' \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags \
    -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags >/dev/null
tests=(test_backend_ops test_opencl_train test_opencl_overlap)
nice -n 10 cmake --build "$build" -j"$jobs" --target spikecl spikecl-cli "${tests[@]}"

# the output folder is replaced: refuse one that is not an earlier bundle
if [ -e "$out" ] && ! { [ -e "$out/VERSION" ] && [ -e "$out/libexec/spikecl" ]; }; then
    echo "bundle: $out exists and is not a bundle; not replacing it" >&2
    exit 2
fi
rm -rf "$out"
mkdir -p "$out"/{bin,libexec,lib,tests,plugins,models,data/fashion-mnist,bench}
cp "$build/spikecl" "$out/libexec/spikecl"
cp -P "$build"/libspikecl.so* "$out/lib/"
for t in "${tests[@]}"; do cp "$build/$t" "$out/tests/"; done

# The example plugin, built the way a user builds one: against an installed spikecl.
stage=$(cd "$build" && pwd)/stage
nice -n 10 cmake --install "$build" --prefix "$stage" >/dev/null
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic linker
nice -n 10 cmake -S plugins/examples/alif -B "$build/alif" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$stage" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
    -DCMAKE_INSTALL_RPATH='$ORIGIN/../lib' -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags \
    -DCMAKE_MODULE_LINKER_FLAGS=-Wl,--disable-new-dtags >/dev/null
nice -n 10 cmake --build "$build/alif" -j"$jobs" >/dev/null
cp "$build/alif/libspikecl_alif.so" "$out/plugins/"

# Models: the data paths point at the bundle's subset, relative to the model file.
for m in models/*.yaml; do
    sed "s|$fmnist/|../data/fashion-mnist/|g" "$m" >"$out/$m"
done
sed -e "s|$fmnist/|../data/fashion-mnist/|g" \
    -e 's|plugins: \[build/libspikecl_alif.so\]|plugins: [../plugins/libspikecl_alif.so]|' \
    plugins/examples/alif/model.yaml >"$out/models/fmnist_alif_mlp.yaml"

# The first 6000 training and 1000 test images (test_opencl_train trains on --limit-train
# 6000 and scores on --limit-test 1000): the same samples as those limits take from the full set.
python3 - "$fmnist" "$out/data/fashion-mnist" <<'EOF'
import gzip, struct, sys
src, dst = sys.argv[1:3]
for split, n in (("train", 6000), ("t10k", 1000)):
    for kind, item in (("images-idx3", 784), ("labels-idx1", 1)):
        name = f"{split}-{kind}-ubyte.gz"
        with gzip.open(f"{src}/{name}", "rb") as f:
            magic, count = struct.unpack(">II", f.read(8))
            dims = f.read(8) if kind.startswith("images") else b""
            body = f.read(n * item)
        if count < n or len(body) != n * item:
            sys.exit(f"bundle: {src}/{name} holds {count} items, fewer than {n}")
        with open(f"{dst}/{name}", "wb") as raw:  # mtime 0: the same bytes on every run
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as g:
                g.write(struct.pack(">II", magic, n) + dims + body)
EOF

# Every library the ELF files load, as ldd resolves them here, except glibc's own.
glibc='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil)\.so'
elfs=("$out/libexec/spikecl" "$out"/lib/libspikecl.so.* "$out"/tests/* "$out"/plugins/*.so)
ldd "${elfs[@]}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
        if [[ $name =~ $glibc ]]; then continue; fi
        [ -e "$out/lib/$name" ] || cp -L "$path" "$out/lib/$name"
    done
if ldd "${elfs[@]}" 2>/dev/null | grep -q 'not found'; then
    ldd "${elfs[@]}" | grep 'not found' >&2
    echo "bundle: a library was not found" >&2
    exit 1
fi
for need in libOpenCL.so.1 libclblast.so.1; do
    [ -e "$out/lib/$need" ] || { echo "bundle: $need is missing from lib/" >&2; exit 1; }
done
# the copied libraries are only loaded, never linked against: strip their symbol tables
strip --strip-unneeded "$out"/lib/*.so* "$out/libexec/spikecl" "$out"/plugins/*.so 2>/dev/null || true

# the highest glibc symbol version a file needs (the fallback libraries aside): the host's
# glibc must be at least that
need=$(find "$out/libexec" "$out/lib" "$out/tests" "$out/plugins" -type f \
    ! -name 'libstdc++.so.6' ! -name 'libgcc_s.so.1' -exec objdump -T {} + 2>/dev/null |
    grep -o 'GLIBC_[0-9.]*' | sort -V -u | tail -n 1)
echo "${need#GLIBC_}" >"$out/GLIBC_MIN"

# libstdc++ and libgcc_s from Debian 12 need glibc 2.36 and 2.35; a host with its own copies
# (any host with a C++ program) uses those, and the bundle's are only a fallback that
# bin/spikecl-env.sh adds to LD_LIBRARY_PATH when the host has none.
mkdir -p "$out/lib/fallback"
for f in libstdc++.so.6 libgcc_s.so.1; do
    [ -e "$out/lib/$f" ] && mv "$out/lib/$f" "$out/lib/fallback/$f"
done
# OpenBLAS (every CPU's kernels, 35 MiB) travels gzipped; bin/spikecl-env.sh unpacks it on the
# first run (gzip is on every Debian and Ubuntu host).
gzip -9 "$out/lib/libopenblas.so.0"

cp scripts/bundle/spikecl "$out/bin/spikecl"
cp scripts/bundle/spikecl-env.sh "$out/bin/spikecl-env.sh"
cp bench/gpu_check.sh "$out/bench/gpu_check.sh"
chmod +x "$out/bin/spikecl" "$out/bench/gpu_check.sh"
git -C "$src" describe --always --dirty >"$out/VERSION" 2>/dev/null || echo "$version" >"$out/VERSION"

mib=$(du -sm "$out" | cut -f 1)
echo "bundle: $out: ${mib} MiB, needs glibc >= $(cat "$out/GLIBC_MIN"), built in $((SECONDS - t0)) s"
if [ "$mib" -gt "$max_mib" ]; then
    echo "bundle: $mib MiB is over the $max_mib MiB limit" >&2
    exit 1
fi
# after the limit's check: PoCL is the optional extra the limit does not cover
if [ "$with_pocl" = 1 ]; then
    bash scripts/bundle/add-pocl.sh "$out"
fi
