#!/usr/bin/env bash
# make demo: what an analyst does on day one, end to end, on this machine.
#   1. flank init (the VM side)   2. git push of examples/repo (the laptop side)
#   3. run the pipeline           4. build and serve the status site
set -euo pipefail
home=$1 bin=$2 port=${3:-8083}
repo_root=$(cd "$(dirname "$0")/.." && pwd)
export FLANK_HOME=$home PATH="$bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a fresh FLANK_HOME in $home"
rm -rf "$home"
mkdir -p "$home"
# The demo must not add lines to your real crontab: its schedule is shown, not installed.
printf '[schedule]\ninstall_crontab = false\n' > "$home/flank.toml"
flank init demo

step "the analyst's working copy: examples/repo, committed"
work=$home/laptop/sales-model
mkdir -p "$work"
cp -r "$repo_root/examples/repo/." "$work/"
git -C "$work" init -q -b main
git -C "$work" add -A
git -C "$work" -c user.name="Ada Analyst" -c user.email=ada@example.org commit -q -m "nightly sales model"
git -C "$work" remote add flank "$home/demo.git"

step "git push flank main"
git -C "$work" push flank main

step "flank run demo nightly"
flank run demo nightly || echo "(the run failed: see the logs above and on the site)"

step "flank run demo nightly, again: nothing changed, so only extract runs (the others are up to date)"
flank run demo nightly || echo "(the run failed: see the logs above and on the site)"

step "flank status"
flank status demo

step "the run's git note, as the analyst sees it"
git -C "$work" config --add remote.flank.fetch '+refs/notes/flank:refs/notes/flank'
git -C "$work" config notes.displayRef refs/notes/flank
git -C "$work" fetch -q flank
git -C "$work" log -1 --format='%h %s%n%N'

step "the status site"
flank site --rebuild
cat <<MSG
Next:
  - open http://127.0.0.1:$port/ (served below; Ctrl-C stops it)
  - change $work/R/model.R, commit, and 'git -C $work push flank main'
  - FLANK_HOME=$home $bin/flank run demo nightly
MSG
if [ "${DEMO_NO_SERVE:-}" = 1 ]; then exit 0; fi
exec flank serve --port "$port"
