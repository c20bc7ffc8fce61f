# Sourced by the get-*.sh download scripts: reads [--verify-only] [-h|--help] [DIR] into
# $verify_only and $dir. Usage: dataset_args SCRIPT_NAME DEFAULT_DIR "$@" (the caller sets
# verify_only's default first).
dataset_args() {
    local name=$1 default=$2 arg
    shift 2
    dir=""
    for arg in "$@"; do
        case "$arg" in
        --verify-only) verify_only=1 ;;
        -h | --help)
            # The comment block at the top of the calling script is the help text.
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        -*)
            echo "$name: unknown option $arg" >&2
            exit 2
            ;;
        *)
            if [ -n "$dir" ]; then
                echo "$name: more than one folder given" >&2
                exit 2
            fi
            dir=$arg
            ;;
        esac
    done
    dir=${dir:-$default}
}
