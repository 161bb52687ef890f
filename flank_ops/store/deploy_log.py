"""deploys.jsonl: one JSON line per push handled, the one definition of its format.

    {"time": "2026-11-24T09:12:03.120+00:00",
     "status": "accepted" | "rejected" | "failed" | "superseded",
                                                       # failed = accepted by git, deploy broke;
                                                       # superseded = a newer push moved the branch
                                                       # before this one's deploy began (that one deploys)
     "ref": "refs/heads/main",                         # or the refused ref (refs/notes/flank, ...)
     "sha": "3f2a1c0...", "short": "3f2a1c0", "message": "fix model formula", "author": "Ada",
     "pusher": "ada",                                  # the VM user the push came in as
     "errors": ["flank.yml:3:5: ..."],                 # why it was rejected / failed
     "warnings": ["crontab is not installed ..."],     # later steps that failed; the deploy stands
     "pipelines": ["nightly"],                         # pipelines deployed (empty when rejected)
     "via": "push" | "flank deploy",                   # flank deploy = redone by hand on the VM
     "superseded_by": "9b1e0d2...",                    # only when superseded: the branch's newer tip
     "setup": {"status": "ran" | "reused" | "skipped" | "failed",   # issue 13, only with setup:
               "duration_s": 41.2, "key": "a1b2c3d4e5f60718", "key_files": ["renv.lock"],
               "log": "20261124T091203123456Z-3f2a1c0.log"}   # in setup/logs/ (secrets masked)

Every push the hooks handle is exactly one line: pre-receive writes the refusals,
post-receive one of accepted, failed or superseded. Lines are appended with
one write each (fileio.append_json_line), so concurrent pushes never interleave; the site's Deploys page reads them with `read_deploys`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flank_ops.fileio import append_json_line, read_json_lines
from flank_ops.paths import ProjectPaths

VIA_PUSH = "push"
VIA_COMMAND = "flank deploy"


def pusher() -> str:
    """Who pushed: the user the push came in as (ssh runs the hook as that user)."""
    for var in ("GL_USER", "USER", "LOGNAME"):  # GL_USER: gitolite-style setups
        if os.environ.get(var):
            return os.environ[var]
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def deploy_entry(
    status: str,
    ref: str,
    commit: dict[str, str],
    *,
    errors: list[str] | None = None,
    warnings: list[str] | None = None,
    pipelines: list[str] | None = None,
    via: str = VIA_PUSH,
    superseded_by: str | None = None,
    setup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "ref": ref,
        "sha": commit.get("sha", ""),
        "short": commit.get("short", ""),
        "message": commit.get("message", ""),
        "author": commit.get("author", ""),
        "pusher": pusher(),
        "errors": list(errors or []),
        "warnings": list(warnings or []),
        "pipelines": list(pipelines or []),
        "via": via,
    }
    if superseded_by:
        entry["superseded_by"] = superseded_by
    if setup is not None:
        entry["setup"] = setup
    return entry


def entry_reason(entry: dict[str, Any]) -> str:
    """Why a failed or refused deploy entry failed, said once ("setup exited 1": the "deploy failed: "
    its errors begin with is for the Pushes page; whoever quotes it here says "failed" itself); the
    first error, and how many more."""
    errors = [str(e).removeprefix("deploy failed: ") for e in entry.get("errors") or []]
    if not errors:
        return "see the Pushes page"
    return errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def record_deploy(paths: ProjectPaths, entry: dict[str, Any]) -> None:
    append_json_line(paths.deploys_log, entry)


def read_deploys(paths: ProjectPaths) -> Iterator[dict[str, Any]]:
    """Every deploy entry, oldest first (damaged lines are skipped)."""
    yield from read_json_lines(paths.deploys_log, "status")


# issue 13: what a deploy's `setup:` did, as its deploys.jsonl entry says ("setup": {"status": ...})
RAN, REUSED, SKIPPED, FAILED = "ran", "reused", "skipped", "failed"


def read_setup_log(paths: ProjectPaths, name: str) -> bytes | None:
    """A setup log by its name in deploys.jsonl (None if pruned or not a plain name)."""
    if not name or "/" in name or name.startswith("."):
        return None
    try:
        return (paths.setup_dir / "logs" / name).read_bytes()
    except OSError:
        return None


def release_setup_build(paths: ProjectPaths, sha: str) -> str | None:
    """The setup build release `sha` runs in: `<key16>-<n>` (its setup key's first 16 hex digits, then
    which build of that key), as deploy/setup.py's link_products records it in setup/releases/<sha>.
    None: the release has no setup. Issue 28 item 1: every task's fingerprint counts it, so a changed key —
    or a rebuild — reruns the tasks of that release. In local mode `sha` is the working copy's folder name
    and the build is local setup's (`<key16>-local`, under .flank/setup/, deploy/setup.py local_setup)."""
    if not sha or "/" in sha or sha.startswith("."):
        return None
    import json

    try:
        state = json.loads((paths.setup_dir / "releases" / sha).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    build = state.get("build") if isinstance(state, dict) else None
    return build if isinstance(build, str) and build else None
