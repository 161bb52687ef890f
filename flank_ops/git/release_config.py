"""The flank.yml each release was deployed with: exactly the bytes the push validated.

Runs read this copy (paths.release_config), never the release's own flank.yml: that
is only a checkout, which a task or a hand edit can change after the push. The deploy
writes the copy from git's object store (content-addressed, so it is what pre-receive
validated) before `current` moves to the release.
"""

from __future__ import annotations

from flank_ops.config.model import Config
from flank_ops.errors import ConfigErrors, UserError
from flank_ops.fileio import atomic_write_bytes
from flank_ops.paths import ProjectPaths


def store_release_config(paths: ProjectPaths, sha: str) -> bytes:
    """Write the release's copy of flank.yml from the commit; returns its bytes."""
    data = _committed(paths, sha)
    atomic_write_bytes(paths.release_config(sha), data, mode=0o644)
    return data


def load_release_config(paths: ProjectPaths, sha: str) -> Config:
    """The validated Config of release `sha`. A release deployed before flank kept this copy
    is read from git's object store instead (still never from the checkout)."""
    from flank_ops.config.load import FILENAME, load_config

    try:
        data = paths.release_config(sha).read_bytes()
    except FileNotFoundError:
        data = _committed(paths, sha)
    try:
        return load_config(data, FILENAME)
    except ConfigErrors as exc:
        raise UserError(
            f"the deployed {FILENAME} ({sha[:7]}) is invalid: " + "; ".join(str(e) for e in exc.errors),
            "fix it and push again",
        ) from None


def _committed(paths: ProjectPaths, sha: str) -> bytes:
    from flank_ops.config.load import MAX_BYTES
    from flank_ops.git.trees import committed_flank_yml

    return committed_flank_yml(paths.bare_repo, sha, MAX_BYTES)


def deployed_config(paths: ProjectPaths) -> Config | None:
    """The Config in force for the project: the validated copy of the release `current` points
    at (a laptop's .flank/: its working copy's flank.yml); None when nothing is deployed.
    Raises UserError when it cannot be read. Every reader of "the deployed flank.yml" asks this."""
    from flank_ops.config.load import FILENAME, load_config_file

    if paths.local:
        working_copy = paths.dir.parent / FILENAME
        return load_config_file(working_copy) if working_copy.is_file() else None
    sha = paths.current_sha()
    if sha is None:
        return None
    return load_release_config(paths, sha)
