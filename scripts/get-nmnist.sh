#!/usr/bin/env bash
# Downloads N-MNIST (Orchard et al. 2015: Train.zip and Test.zip from the data set's Mendeley
# page), checks their md5 sums and extracts them to DIR/Train/<digit>/<id>.bin and
# DIR/Test/<digit>/<id>.bin, the layout `spikecl train models/nmnist_conv.yaml --data DIR` reads.
#
#   scripts/get-nmnist.sh [--verify-only] [DIR]      DIR defaults to data/nmnist
#
# An archive already in DIR with the right md5 is kept (and not fetched again); a split already
# extracted is not extracted again. An archive whose md5 is wrong is removed and the script
# fails; nothing is extracted from it. --verify-only (or SPK_NMNIST_VERIFY_ONLY=1) downloads
# nothing: it checks the archives that are present, then extracts the splits that are missing.
# SPK_NMNIST_URLS ("TRAIN_URL TEST_URL") overrides the download addresses (curl also takes
# file:// ones); SPK_NMNIST_MD5S ("TRAIN_MD5 TEST_MD5") the expected sums, for testing the
# script on small archives.
set -euo pipefail

verify_only=${SPK_NMNIST_VERIFY_ONLY:-0}
# shellcheck source=lib/dataset-args.sh
. "$(dirname "$0")/lib/dataset-args.sh"
dataset_args get-nmnist.sh data/nmnist "$@"

base=https://data.mendeley.com/public-files/datasets/468j46mzdv/files
read -r -a urls <<<"${SPK_NMNIST_URLS:-$base/39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded $base/05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded}"
read -r -a sums <<<"${SPK_NMNIST_MD5S:-20959b8e626244a1b502305a9e6e2031 69ca8762b2fe404d9b9bad1103e97832}"
files=(Train.zip Test.zip)
splits=(Train Test)
if [ ${#urls[@]} -ne 2 ] || [ ${#sums[@]} -ne 2 ]; then
    echo "get-nmnist.sh: SPK_NMNIST_URLS and SPK_NMNIST_MD5S take two words each (Train, Test)" >&2
    exit 2
fi

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"
    else
        echo "get-nmnist.sh: neither md5sum nor md5 is installed" >&2
        exit 1
    fi
}

command -v unzip >/dev/null 2>&1 || {
    echo "get-nmnist.sh: unzip is not installed (Debian: apt-get install unzip)" >&2
    exit 1
}

if [ "$verify_only" != 1 ]; then
    mkdir -p "$dir"
fi

failed=0
for i in 0 1; do
    f=${files[$i]}
    want=${sums[$i]}
    path=$dir/$f
    split=${splits[$i]}
    have=0
    if [ -f "$path" ]; then
        got=$(md5_of "$path")
        if [ "$got" = "$want" ]; then
            echo "ok       $path"
            have=1
        elif [ "$verify_only" = 1 ]; then
            echo "MISMATCH $path: md5 $got, expected $want" >&2
            failed=1
            continue
        else
            echo "redo     $path: md5 $got, expected $want; downloading again"
        fi
    elif [ "$verify_only" = 1 ]; then
        echo "MISSING  $path" >&2
        failed=1
        continue
    fi
    if [ "$have" != 1 ]; then
        # to a temporary name, so an interrupted run never leaves a half file under the real one
        tmp="$path.part.$$"
        echo "fetch    ${urls[$i]}"
        if curl -fL --retry 2 --connect-timeout 20 -sS -o "$tmp" "${urls[$i]}"; then
            got=$(md5_of "$tmp")
            if [ "$got" = "$want" ]; then
                mv -f "$tmp" "$path"
                echo "ok       $path"
                have=1
            else
                echo "MISMATCH ${urls[$i]}: md5 $got, expected $want" >&2
            fi
        else
            echo "failed   ${urls[$i]}" >&2
        fi
        rm -f "$tmp"
        if [ "$have" != 1 ]; then
            failed=1
            continue
        fi
    fi
    if [ -d "$dir/$split" ]; then
        echo "present  $dir/$split"
    else
        # into a scratch folder first: a half-extracted split is never left under its name
        scratch=$(mktemp -d "$dir/.extract.XXXXXX")
        if unzip -q "$path" -d "$scratch" && [ -d "$scratch/$split" ]; then
            mv "$scratch/$split" "$dir/$split"
            echo "extract  $dir/$split"
        else
            echo "get-nmnist.sh: $path does not extract to a $split/ folder" >&2
            failed=1
        fi
        rm -rf "$scratch"
    fi
    if [ -d "$dir/$split" ]; then
        n=$(find "$dir/$split" -name '*.bin' -type f | wc -l)
        echo "         $dir/$split: $n recordings"
    fi
done

if [ "$failed" != 0 ]; then
    echo "get-nmnist.sh: N-MNIST in $dir is incomplete or wrong (see above)" >&2
    exit 1
fi
echo "N-MNIST is complete in $dir"
