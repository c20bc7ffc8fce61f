#!/usr/bin/env bash
# ctest's test_nir_python: runs check_nir.py with a Python that has the `nir` package (PyPI:
# numpy + h5py). The interpreter is $SPIKECL_NIR_PYTHON, else a venv in the build folder,
# created and filled with pip on first use. Without one: under CI=true the test fails; elsewhere
# it is skipped (exit 77) with the reason.
# Usage: run.sh SPIKECL_CLI BUILD_DIR
set -uo pipefail
cli=$1
build=$2
here=$(cd "$(dirname "$0")" && pwd)
skip() {
    echo "test_nir_python: $*" >&2
    if [ "${CI:-}" = true ]; then
        echo "test_nir_python: FAILED (CI must run it: pip install nir)" >&2
        exit 1
    fi
    echo "test_nir_python: skipped" >&2
    exit 77
}
py=${SPIKECL_NIR_PYTHON:-}
if [ -z "$py" ]; then
    venv=$build/nir-venv
    if ! "$venv/bin/python" -c "import nir" 2>/dev/null; then
        python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 -m venv failed (python3-venv?)"
        "$venv/bin/pip" install -q nir >"$build/nir-venv.log" 2>&1 ||
            skip "pip install nir failed: $(tail -n 3 "$build/nir-venv.log")"
    fi
    py=$venv/bin/python
fi
"$py" -c "import nir" 2>/dev/null || skip "$py has no 'nir' package"
exec "$py" "$here/check_nir.py" "$cli" "$here/../data/mnist"
