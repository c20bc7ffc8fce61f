#!/usr/bin/env bash
# valgrind memcheck of a short CPU training run (a few batches, then a test pass and a checkpoint),
# and of eval on the checkpoint it wrote. valgrind cannot run -march=native code (AVX-512), so this
# uses its own portable build in build-valgrind/. Fails on any memory error or definite/indirect
# leak. Usage: bash scripts/valgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPIKECL_NATIVE=OFF \
    -DSPIKECL_TESTS=OFF >/dev/null
cmake --build build-valgrind -j"$(nproc)" --target spikecl-cli

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The tests' 500 MNIST digits serve as both splits: small, and in the repository.
mkdir -p "$work/data"
for kind in images-idx3 labels-idx1; do
    cp "tests/data/mnist/t10k-$kind-ubyte.gz" "$work/data/train-$kind-ubyte.gz"
    cp "tests/data/mnist/t10k-$kind-ubyte.gz" "$work/data/t10k-$kind-ubyte.gz"
done

# OpenBLAS picks its kernels for the CPU at run time; Haswell's (AVX2) are ones valgrind runs.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
# With neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT set the CLI sets the latter and execs itself
# (tools/spikecl.c), and the exec'd process would run outside valgrind: set it here.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    --track-origins=yes --num-callers=30 --suppressions=scripts/valgrind.supp)
echo "valgrind.sh: train (4 batches of 16, 32 test images)"
"${vg[@]}" build-valgrind/spikecl train models/fmnist_lif_mlp.yaml --device cpu --threads 2 \
    --data "$work/data" --limit-train 64 --limit-test 32 --batch 16 --epochs 1 \
    --out "$work/run"
echo "valgrind.sh: eval"
"${vg[@]}" build-valgrind/spikecl eval models/fmnist_lif_mlp.yaml --device cpu --threads 2 \
    --data "$work/data" --limit-test 32 --batch 16 --weights "$work/run/model.safetensors"
echo "valgrind.sh: clean"
