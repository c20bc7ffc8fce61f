#!/usr/bin/env bash
# Installs spikecl's Debian packages (idempotent) and builds it into build/.
# Usage: bash scripts/setup-debian.sh [extra cmake options, e.g. -DSPIKECL_WERROR=ON]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libyaml-dev libjansson-dev libopenblas-dev zlib1g-dev
          libcriterion-dev ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd
          clinfo dataset-fashion-mnist unzip zip libcairo2-dev fonts-dejavu-core libhdf5-dev
          python3-venv)
# unzip: get-nmnist.sh; zip: its test
# libcairo2-dev: the CLI draws a run's pictures (PNG) with cairo; fonts-dejavu-core gives its
# text a font on a minimal system
# libhdf5-dev: NIR files (spikecl export/import); python3-venv: test_nir_python pip-installs
# the `nir` package into build/nir-venv
# CI also fuzzes (clang; libclang-rt-14-dev ships clang 14's libFuzzer, libomp-dev its OpenMP),
# runs valgrind, compares the public ABI with its baseline (abigail-tools) and compiles every
# OpenCL program for nvptx64, amdgcn and spir64 (clang-15) (.ci/run).
if [ "${CI:-}" = true ]; then
    packages+=(clang libclang-rt-14-dev libomp-dev valgrind abigail-tools clang-15)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$(nproc)"
