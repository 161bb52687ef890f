"""Is what runs what was pushed? The deploy branch's tip against the deployed commit.

A push moves the branch first (git), then post-receive deploys it. A post-receive
killed midway (kill -9, a reboot, an ssh drop with a hung hook) leaves the branch
ahead of `current`, or `current` switched with stale Makefiles and crontab, while
`git push` exited 0. So a deploy writes the commit it is deploying into the deploy
lock file (.locks/deploy.lock) once it holds the lock and empties it when it is
done: a non-empty lock file nobody holds is a deploy that never finished.

`deploy_gap` says what a person should know, for `flank status` and the site:

    branch at 3f2a1c0, deployed 9b1e0d2 (deploy interrupted — `flank deploy demo` retries)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from flank_ops.hints import flank_command
from flank_ops.paths import ProjectPaths

# What a gap is: interrupted and failed need `flank deploy`; by_hand is a choice someone made;
# deploying is a deploy holding the lock right now (nothing to fix: it is going on).
INTERRUPTED, FAILED, BY_HAND, DEPLOYING = "interrupted", "failed", "by_hand", "deploying"


class DeployGap(NamedTuple):
    reason: str
    tip: str | None  # the deploy branch's commit (None: the branch has none)
    deployed: str | None  # what `current` points at (None: nothing yet)
    message: str


def _lock_path(paths: ProjectPaths) -> Path:
    return paths.lock_file("deploy")


@contextlib.contextmanager
def deploy_marked(paths: ProjectPaths, sha: str) -> Iterator[None]:
    """Around a deploy, with the deploy lock held: mark `sha` in progress; unmark when the block
    returns. An exception or a kill leaves the mark, which is what makes an unfinished deploy visible."""
    lock = _lock_path(paths)
    lock.write_text(sha + "\n", encoding="utf-8")
    yield
    lock.write_text("", encoding="utf-8")


def _marked_sha(paths: ProjectPaths) -> tuple[bool, str | None]:
    """(a deploy holds the lock now, the sha an unfinished deploy left marked)."""
    try:
        fd = os.open(_lock_path(paths), os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, None
        text = os.read(fd, 200).decode("ascii", "replace").strip()
        return False, text or None
    finally:
        os.close(fd)


def deploy_gap(paths: ProjectPaths) -> DeployGap | None:
    """Why the deploy branch's tip is not fully deployed, or None when it is (or nothing was pushed)."""
    if paths.local:
        return None
    from flank_ops.git.bare_repo import branch_tip, deploy_branch

    busy, marked = _marked_sha(paths)
    deployed = paths.current_sha()
    tip = branch_tip(paths.bare_repo, deploy_branch(paths.bare_repo))
    short_tip, short_deployed = (tip or "none")[:7], deployed[:7] if deployed else "nothing yet"
    retry = f"`{flank_command('deploy', paths.name)}` retries"
    if busy:
        return DeployGap(
            DEPLOYING, tip, deployed, f"a deploy is in progress (branch at {short_tip}, deployed {short_deployed})"
        )
    if marked:
        if tip == deployed:
            return DeployGap(
                INTERRUPTED,
                tip,
                deployed,
                f"branch at {short_tip}, deployed {short_deployed} but its "
                f"deploy was interrupted; Makefiles, crontab and site may be stale — {retry}",
            )
        return DeployGap(
            INTERRUPTED,
            tip,
            deployed,
            f"branch at {short_tip}, deployed {short_deployed} (deploy interrupted — {retry})",
        )
    if tip is None or tip == deployed:
        return None
    from flank_ops.store.deploy_log import VIA_COMMAND, entry_reason, read_deploys

    deploys = [e for e in read_deploys(paths) if e.get("status") in ("accepted", "failed")]
    last = deploys[-1] if deploys else {}
    if last.get("via") == VIA_COMMAND and last.get("status") == "accepted" and last.get("sha") == deployed:
        return DeployGap(
            BY_HAND,
            tip,
            deployed,
            f"branch at {short_tip}, deployed {short_deployed} by hand "
            f"(`{flank_command('deploy', paths.name)}` deploys the branch)",
        )
    if last.get("status") == "failed" and last.get("sha") == tip:
        reason = entry_reason(last)
        return DeployGap(
            FAILED,
            tip,
            deployed,
            f"branch at {short_tip}, deployed {short_deployed} (deploy failed: {reason} — {retry})",
        )
    return DeployGap(
        INTERRUPTED, tip, deployed, f"branch at {short_tip}, deployed {short_deployed} (deploy interrupted — {retry})"
    )
