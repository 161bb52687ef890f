#!/bin/sh
# flank's entrypoint for AWS Batch jobs (issue 14). Copy it into the job definition's image, e.g.
#     COPY batch_entrypoint.sh /usr/local/bin/flank-entrypoint
# and give the job definition the command ["/bin/sh", "/usr/local/bin/flank-entrypoint"].
# The image needs /bin/sh, tar with gzip, and curl or wget or python3; plus whatever the tasks run (R, ...).
#
# It reads these environment variables, which flank sets for each job (containerOverrides):
#   FLANK_RELEASE_URL  presigned S3 URL of the release tarball (releases/<project>/<sha>.tar.gz)
#   FLANK_SECRETS_URL  presigned S3 URL of the task's secrets (NAME='value' lines); absent without secrets
#   FLANK_WORKDIR      the task's folder, relative to the release root ("." for the root)
#   FLANK_COMMAND      the task's command, run by /bin/sh -c like on the VM
#   FLANK_COMMIT       the release's commit (for the task's own use)
#   FLANK_STAGE_URL    presigned S3 URL of the task's staged inputs: `file URL PATH` lines (issue 26), each
#                      file fetched to PATH in the release before the command runs, and `tree URL NAME`,
#                      setup's build (ship_setup) unpacked as NAME in the release
#   FLANK_RESULTS      the task's outputs: and artifacts: patterns, repo-relative, one a line (issue 26)
#   FLANK_RESULTS_URL  presigned S3 URL the files they match go to, as one tar.gz, after the command
#   FLANK_CELLS_URL    an array job's (issue 26): presigned S3 URL of its cells, line N+1 the sh assignments of
#                      child N (AWS_BATCH_JOB_ARRAY_INDEX, set by Batch): FLANK_TASK, FLANK_MATRIX_*, ...
#   FLANK_ROOT         optional, set in the job definition: where to unpack (default: a new temporary folder)
# and sets FLANK_RELEASE to the unpacked release for the task, as on the VM.
# The presigned URLs never appear on a command line: they reach curl/wget on their standard input.
# Exit status: the task's; 97 when the release, the secrets or an input cannot be fetched or unpacked;
# 98 when the command succeeded but its results could not be sent back.
# The patterns are matched by this shell: `*`, `?` and `[...]` within a folder, a folder for all of it
# (`**` is `*` here).
set -eu

fail() {
    echo "flank entrypoint: $*" >&2
    exit 97
}

# send FILE URL: an HTTP PUT of FILE to the presigned URL (the URL kept off argv as in fetch)
send() {
    if command -v curl >/dev/null 2>&1; then
        printf 'url = "%s"\n' "$2" | curl -fsS --retry 3 -X PUT -T "$1" -K - -o /dev/null
    elif command -v wget >/dev/null 2>&1; then
        printf '%s\n' "$2" | wget -q --method=PUT --body-file="$1" -i - -O /dev/null
    else
        FLANK_FETCH_URL="$2" python3 -c 'import os, sys, urllib.request as u; u.urlopen(u.Request(os.environ["FLANK_FETCH_URL"], data=open(sys.argv[1], "rb").read(), method="PUT"))' "$1"
    fi
}

# fetch URL FILE: the URL goes through stdin (curl -K -, wget -i -) or the environment (python3), not argv
fetch() {
    if command -v curl >/dev/null 2>&1; then
        printf 'url = "%s"\n' "$1" | curl -fsS --retry 3 -K - -o "$2"
    elif command -v wget >/dev/null 2>&1; then
        printf '%s\n' "$1" | wget -q -i - -O "$2"
    else
        FLANK_FETCH_URL="$1" python3 -c 'import os, sys, urllib.request; urllib.request.urlretrieve(os.environ["FLANK_FETCH_URL"], sys.argv[1])' "$2"
    fi
}

[ -n "${FLANK_RELEASE_URL:-}" ] || fail "FLANK_RELEASE_URL is not set: this container is meant to be started by flank"
[ -n "${FLANK_COMMAND:-}" ] || fail "FLANK_COMMAND is not set: this container is meant to be started by flank"

umask 077
root=${FLANK_ROOT:-$(mktemp -d)}
mkdir -p "$root/release"
fetch "$FLANK_RELEASE_URL" "$root/release.tar.gz" || fail "could not download the release (commit ${FLANK_COMMIT:-?}) from S3"
tar -xzf "$root/release.tar.gz" -C "$root/release" || fail "could not unpack the release"
rm -f "$root/release.tar.gz"

if [ -n "${FLANK_CELLS_URL:-}" ]; then # an array job's child (issue 26): its matrix cell by its index
    [ -n "${AWS_BATCH_JOB_ARRAY_INDEX:-}" ] || fail "FLANK_CELLS_URL is set but AWS_BATCH_JOB_ARRAY_INDEX is not"
    fetch "$FLANK_CELLS_URL" "$root/cells.txt" || fail "could not download the matrix cells from S3"
    cell=$(sed -n "$((AWS_BATCH_JOB_ARRAY_INDEX + 1))p" "$root/cells.txt")
    [ -n "$cell" ] || fail "no cell $AWS_BATCH_JOB_ARRAY_INDEX in the array's cells"
    set -a
    eval "$cell"
    set +a
    rm -f "$root/cells.txt"
fi

if [ -n "${FLANK_SECRETS_URL:-}" ]; then
    fetch "$FLANK_SECRETS_URL" "$root/secrets.env" || fail "could not download the task's secrets from S3"
    set -a
    . "$root/secrets.env"
    set +a
    rm -f "$root/secrets.env"
fi

if [ -n "${FLANK_STAGE_URL:-}" ]; then
    fetch "$FLANK_STAGE_URL" "$root/inputs.txt" || fail "could not download the list of the task's inputs from S3"
    staged=0
    while read -r kind url path; do
        [ -n "$url" ] || continue
        if [ "$kind" = tree ]; then # setup's build (a venv, a library): in place of its link to the VM
            rm -rf "${root:?}/release/$path"
            fetch "$url" "$root/tree.tar.gz" || fail "could not download setup's $path from S3"
            tar -xzf "$root/tree.tar.gz" -C "$root/release" || fail "could not unpack setup's $path"
            rm -f "$root/tree.tar.gz"
        else
            mkdir -p "$(dirname "$root/release/$path")"
            fetch "$url" "$root/release/$path" || fail "could not download the input $path from S3"
        fi
        staged=$((staged + 1))
    done <"$root/inputs.txt"
    rm -f "$root/inputs.txt"
    echo "flank: fetched $staged staged input(s) from S3"
fi
results_url=${FLANK_RESULTS_URL:-}
unset FLANK_RELEASE_URL FLANK_SECRETS_URL FLANK_STAGE_URL FLANK_RESULTS_URL FLANK_CELLS_URL
umask 022

FLANK_RELEASE="$root/release"
export FLANK_RELEASE
cd "$root/release/${FLANK_WORKDIR:-.}" || fail "no folder ${FLANK_WORKDIR:-.} in the release"
[ -n "$results_url" ] || exec /bin/sh -c "$FLANK_COMMAND"

# results to send back: run the command as a child (a stop reaches it), then pack what it left
/bin/sh -c "$FLANK_COMMAND" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
status=0
wait "$child" || status=$?
while kill -0 "$child" 2>/dev/null; do # wait was cut short by a signal: the command is still ending
    status=0
    wait "$child" || status=$?
done
trap - TERM INT

cd "$root/release"
: >"$root/results.list"
old_ifs=$IFS
IFS='
'
for found in $FLANK_RESULTS; do # one pattern a line, each expanded by the shell
    if [ -e "$found" ]; then printf '%s\n' "$found" >>"$root/results.list"; fi
done
IFS=$old_ifs
sent=$(wc -l <"$root/results.list" | tr -d ' ')
if tar -czf "$root/results.tar.gz" -T "$root/results.list" && send "$root/results.tar.gz" "$results_url"; then
    echo "flank: sent $sent result file(s) or folder(s) back through S3"
else
    echo "flank entrypoint: could not send the task's outputs and artifacts back to S3" >&2
    [ "$status" -ne 0 ] || status=98
fi
exit "$status"
