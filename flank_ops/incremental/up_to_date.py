"""The last decision that found every selected task up to date, and what it looked at.

A no-change run (the nightly run of a pipeline nothing touched since) asks the same question as
the run before it and gets the same answer: every task up to date. decide() (plan.py) keeps
that answer, when it is one, with everything the answer was read from:

    key      the decision's question: flank's deciding code, the selected tasks and, for each,
             everything its fingerprint is computed from that is not a file (command, env and
             parameter digests, patterns, upstream outputs, the setup build: fingerprints.TaskFiles)
    files    every file it read — inputs, scripts and what they source, upstream and own outputs,
             each task's state file — by (size, mtime_ns, inode): followed through links
    folders  every folder listed to find a command's scripts, by mtime (a name added, removed or
             renamed in it changes it)
    globs    every glob pattern, with the files it matched

The next decision with the same key checks those first: when every file and folder is as it
was and every glob matches the same files, the answer is the same, and the per-task work
(hundreds of fingerprints, a third of a no-change run) is skipped. Anything else — one file
touched, a folder changed, a glob matching another file — and decide() runs in full, as if
this file did not exist.

A file is trusted by its stat only as the hash cache trusts it (fingerprints.RACY_S): an answer
that read a file or folder changed in the last second before it is not kept, since a second
change within the same clock tick could leave the stat as it was.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import xxhash

from flank_ops.code_identity import code_identity
from flank_ops.fileio import atomic_write_text, read_small_file
from flank_ops.incremental import fingerprints as fpr
from flank_ops.incremental import script_refs
from flank_ops.paths import ProjectPaths

FORMAT = 1


def question(decider: ModuleType, selected: Sequence[str], files: Sequence[fpr.TaskFiles]) -> str:
    """The key of a decision: the code that decides (`decider`: plan.py, and the modules it asks) and
    everything it decides from, but files."""
    code = code_identity(decider, fpr, script_refs, sys.modules[__name__])
    body = json.dumps([code, list(selected), [f.to_json() for f in files]], sort_keys=True)
    return xxhash.xxh3_128_hexdigest(body.encode("utf-8", "surrogateescape"))


def still_holds(paths: ProjectPaths, pipeline: str, key: str) -> bool:
    """Whether the kept all-up-to-date answer was to this question and nothing it read has changed."""
    try:
        kept = json.loads(read_small_file(paths.up_to_date_file(pipeline)))
        if kept.get("format") != FORMAT or kept.get("key") != key:
            return False
        for path, was in kept["files"].items():
            st = os.stat(path)
            if [st.st_size, st.st_mtime_ns, st.st_ino] != was:
                return False
        for folder, was in kept["folders"].items():
            if fpr.folder_mtime(folder) != was:
                return False
        return all(fpr.glob_files(root, rel) == was for root, rel, was in kept["globs"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False  # none kept, or unreadable: decide in full


def keep(
    paths: ProjectPaths, pipeline: str, key: str, cache: fpr.HashCache, state_files: dict[str, tuple[int, int, int]]
) -> None:
    """Keep an all-up-to-date answer with what it read (cache: the decision's one-look HashCache;
    state_files: each task's state file as it was read). Not kept when something it read changed
    too recently to be told apart by its stat; a shortcut only, so a failure to write is no error."""
    looked = {**cache.looked, **state_files}
    newest = max([m for _, m, _ in looked.values()] + [m for m in cache.folders.values() if m is not None], default=0)
    target = paths.up_to_date_file(pipeline)
    if time.time_ns() - newest < fpr.RACY_S * 1e9:
        forget(paths, pipeline)
        return
    body: dict[str, Any] = {
        "format": FORMAT,
        "key": key,
        "files": {path: list(st) for path, st in looked.items()},
        "folders": cache.folders,
        "globs": [[root, rel, names] for (root, rel), names in cache.globs.items()],
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, json.dumps(body) + "\n", 0o600, durable=False)
    except OSError:
        pass


def forget(paths: ProjectPaths, pipeline: str) -> None:
    try:
        paths.up_to_date_file(pipeline).unlink()
    except OSError:
        pass
