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
#   FLANK_ROOT         optional, set in the job definition: where to unpack (default: a new temporary folder)
# and sets FLANK_RELEASE to the unpacked release for the task, as on the VM.
# The presigned URLs never appear on a command line: they reach curl/wget on their standard input.
# Exit status: the task's; 97 when the release or the secrets cannot be fetched or unpacked.
set -eu

fail() {
    echo "flank entrypoint: $*" >&2
    exit 97
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

if [ -n "${FLANK_SECRETS_URL:-}" ]; then
    fetch "$FLANK_SECRETS_URL" "$root/secrets.env" || fail "could not download the task's secrets from S3"
    set -a
    . "$root/secrets.env"
    set +a
    rm -f "$root/secrets.env"
fi
unset FLANK_RELEASE_URL FLANK_SECRETS_URL
umask 022

FLANK_RELEASE="$root/release"
export FLANK_RELEASE
cd "$root/release/${FLANK_WORKDIR:-.}" || fail "no folder ${FLANK_WORKDIR:-.} in the release"
exec /bin/sh -c "$FLANK_COMMAND"
