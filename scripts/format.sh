#!/usr/bin/env bash
# Formats the C sources with the committed .clang-format; --check only reports.
# Kernel files (.cl) are left alone: their SPK_FOR_ITEMS blocks read better as written.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--check" ]; then
    clang-format --dry-run --Werror "${files[@]}"
else
    clang-format -i "${files[@]}"
fi
