#!/usr/bin/env bash
# Downloads the four MNIST files (gzip IDX) and checks their md5 sums.
#
#   scripts/get-mnist.sh [--verify-only] [DIR]      DIR defaults to data/mnist
#
# Files already present with the right md5 are kept. A file whose md5 is wrong after download is
# removed and the script fails. --verify-only (or SPK_MNIST_VERIFY_ONLY=1) downloads nothing: it
# checks the files that are present and fails if any is missing or wrong.
# SPK_MNIST_MIRRORS (space-separated base URLs, each ending in /) overrides the mirror list.
# SPK_MNIST_MD5 (four md5 sums: train images, train labels, t10k images, t10k labels) overrides the
# expected sums; the tests use it to check the script on the small test split they ship.
set -euo pipefail

verify_only=${SPK_MNIST_VERIFY_ONLY:-0}
# shellcheck source=lib/dataset-args.sh
. "$(dirname "$0")/lib/dataset-args.sh"
dataset_args get-mnist.sh data/mnist "$@"

mirrors=${SPK_MNIST_MIRRORS:-"https://ossci-datasets.s3.amazonaws.com/mnist/ https://storage.googleapis.com/cvdf-datasets/mnist/"}

files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
    t10k-labels-idx1-ubyte.gz)
sums=(f68b3c2dcbeaaa9fbdd348bbdeb94873 d53e105ee54ea40749a09fcbcd1e9432
    9fb629c4189551a2d022fa330f9573f3 ec29112dd5afa0611ce80d1b7f02629c)
if [ -n "${SPK_MNIST_MD5:-}" ]; then
    read -r -a sums <<<"$SPK_MNIST_MD5"
    if [ ${#sums[@]} -ne 4 ]; then
        echo "get-mnist.sh: SPK_MNIST_MD5 must hold four md5 sums" >&2
        exit 2
    fi
fi

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"
    else
        echo "get-mnist.sh: neither md5sum nor md5 is installed" >&2
        exit 1
    fi
}

fetch() { # url dest
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 2 --connect-timeout 20 -sS -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -T 20 -t 2 -O "$2" "$1"
    else
        echo "get-mnist.sh: neither curl nor wget is installed" >&2
        return 1
    fi
}

if [ "$verify_only" != 1 ]; then
    mkdir -p "$dir"
fi

failed=0
for i in "${!files[@]}"; do
    f=${files[$i]}
    want=${sums[$i]}
    path=$dir/$f
    if [ -f "$path" ]; then
        got=$(md5_of "$path")
        if [ "$got" = "$want" ]; then
            echo "ok       $path"
            continue
        fi
        if [ "$verify_only" = 1 ]; then
            echo "MISMATCH $path: md5 $got, expected $want" >&2
            failed=1
            continue
        fi
        echo "redo     $path: md5 $got, expected $want; downloading again"
    elif [ "$verify_only" = 1 ]; then
        echo "MISSING  $path" >&2
        failed=1
        continue
    fi

    # Download to a temporary name so an interrupted run never leaves a half file under the real name.
    tmp="$path.part.$$"
    done_one=0
    for m in $mirrors; do
        echo "fetch    $m$f"
        if fetch "$m$f" "$tmp"; then
            got=$(md5_of "$tmp")
            if [ "$got" = "$want" ]; then
                mv -f "$tmp" "$path"
                echo "ok       $path"
                done_one=1
                break
            fi
            echo "MISMATCH $m$f: md5 $got, expected $want; trying the next mirror" >&2
        else
            echo "failed   $m$f" >&2
        fi
        rm -f "$tmp"
    done
    rm -f "$tmp"
    if [ "$done_one" != 1 ]; then
        echo "get-mnist.sh: could not get $f with the right md5 from any mirror" >&2
        failed=1
    fi
done

if [ "$failed" != 0 ]; then
    echo "get-mnist.sh: some MNIST files in $dir are missing or wrong (see above)" >&2
    exit 1
fi
echo "MNIST is complete in $dir"
