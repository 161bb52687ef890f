"""The flank.yml each release was deployed with: exactly the bytes the push validated.

Runs read this copy (paths.release_config), never the release's own flank.yml: that
is only a checkout, which a task or a hand edit can change after the push. The deploy
writes the copy before `current` moves to the release: the bytes pre-receive validated
(handed over in paths.validated_flank_yml), else from git's object store (content-addressed,
so it is what pre-receive validated).

Beside it the deploy keeps the validated Config, pickled (paths.config_cache): a run loads it
in milliseconds instead of parsing and validating flank.yml again (issue 22: most of a
no-change run of a big pipeline). The pickle is used only for the very bytes it was made from,
by this very flank (its version and config code): anything else, and it is made again.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path

from flank_ops.code_identity import code_identity
from flank_ops.config import load as config_load
from flank_ops.config.load import FILENAME, MAX_BYTES, load_config, load_config_file
from flank_ops.config.model import Config
from flank_ops.errors import ConfigErrors, UserError
from flank_ops.fileio import atomic_write_bytes
from flank_ops.git.trees import committed_flank_yml
from flank_ops.paths import ProjectPaths


def store_release_config(paths: ProjectPaths, sha: str, config: Config | None = None) -> bytes:
    """Write the release's copy of flank.yml (and, given `config`, its validated Config);
    returns the bytes."""
    handed = paths.validated_flank_yml(sha)
    target = paths.release_config(sha)
    try:
        data = handed.read_bytes()
    except OSError:
        data = _committed(paths, sha)
        atomic_write_bytes(target, data, mode=0o644)
    else:  # what pre-receive validated, written (durably, as below) and handed over
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(handed, target)
    if config is not None:
        _save_cache(paths.config_cache(sha), _cache_key(data, FILENAME), config)
    return data


def load_release_config(paths: ProjectPaths, sha: str) -> Config:
    """The validated Config of release `sha`. A release deployed before flank kept this copy
    is read from git's object store instead (still never from the checkout)."""
    try:
        data = paths.release_config(sha).read_bytes()
    except FileNotFoundError:
        data = _committed(paths, sha)
    try:
        return _cached(data, FILENAME, paths.config_cache(sha))
    except ConfigErrors as exc:
        raise UserError(
            f"the deployed {FILENAME} ({sha[:7]}) is invalid: " + "; ".join(str(e) for e in exc.errors),
            "fix it and push again",
        ) from None


def load_working_copy_config(paths: ProjectPaths, path: Path) -> Config:
    """A working copy's flank.yml (`flank run --local`), validated once per change of its bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        data = b""
    if not data or len(data) > MAX_BYTES:
        return load_config_file(path)  # says what is wrong with the file
    return _cached(data, str(path), paths.config_cache(None))


def validated_before(paths: ProjectPaths, data: bytes) -> Config | None:
    """The Config of the deployed release when its flank.yml is exactly `data` (and this flank made
    it), else None: a push that leaves flank.yml as it is need not parse and validate it again. The
    caller still checks what depends on more than the bytes (config/load.py `still_valid`)."""
    sha = paths.current_sha()
    if sha is None:
        return None
    return _from_cache(paths.config_cache(sha), _cache_key(data, FILENAME))


def _committed(paths: ProjectPaths, sha: str) -> bytes:
    return committed_flank_yml(paths.bare_repo, sha, MAX_BYTES)


def deployed_config(paths: ProjectPaths) -> Config | None:
    """The Config in force for the project: the validated copy of the release `current` points
    at (a laptop's .flank/: its working copy's flank.yml); None when nothing is deployed.
    Raises UserError when it cannot be read. Every reader of "the deployed flank.yml" asks this."""
    if paths.local:
        working_copy = paths.dir.parent / FILENAME
        return load_working_copy_config(paths, working_copy) if working_copy.is_file() else None
    sha = paths.current_sha()
    if sha is None:
        return None
    return load_release_config(paths, sha)


# --- the pickled Config ----------------------------------------------------------------

_KEY_BYTES = 32


def _cache_key(data: bytes, filename: str) -> bytes:
    """What the pickle was made from: the bytes, the name errors cite, and this flank's code (its
    version, and every module of config/, where the rules live: an edit there is a new flank)."""
    head = "\0".join([*code_identity(folders=(config_load,)), filename]).encode()
    try:  # hashlib's own blake2b, without loading OpenSSL first (~2 ms of each push's pre-receive)
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b
    return blake2b(head + b"\0" + data, digest_size=_KEY_BYTES).digest()


def _cached(data: bytes, filename: str, cache: Path) -> Config:
    """The Config of `data`: from `cache` when it was made from these bytes, else validated (and kept)."""
    key = _cache_key(data, filename)
    config = _from_cache(cache, key)
    if config is None:
        config = load_config(data, filename)
        _save_cache(cache, key, config)
    return config


def _from_cache(cache: Path, key: bytes) -> Config | None:
    with contextlib.suppress(OSError, pickle.PickleError, AttributeError, EOFError, ImportError, TypeError):
        blob = cache.read_bytes()
        if blob[:_KEY_BYTES] == key:
            config = pickle.loads(blob[_KEY_BYTES:])
            if isinstance(config, Config):
                return config
    return None


def _save_cache(cache: Path, key: bytes, config: Config) -> None:
    with contextlib.suppress(OSError):  # only a shortcut: the next run validates again
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache, key + pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL), durable=False)


def known_pipelines(paths: ProjectPaths) -> list[str]:
    """The pipelines a user may name: the deployed flank.yml's, and any with runs (since removed from it)."""
    config = deployed_config(paths)
    return sorted(set(paths.pipelines_with_runs()) | set(config.pipelines if config is not None else ()))
