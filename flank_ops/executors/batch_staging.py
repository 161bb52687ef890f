"""issue 26 item 3: a Batch task's declared files through S3, so a job sees and leaves what a local task would.

    inputs:     each file goes up once, by its content: <prefix>staged/xxh3_128-<hex> (skipped when that
                object is in the bucket already: an unchanged input is never uploaded twice); the job gets
                a list of (presigned GET URL, repo path) lines, itself an S3 object
                <prefix>jobs/<job name>.<random>/inputs.txt whose presigned URL is FLANK_STAGE_URL, and
                the entrypoint puts each file at its path in the unpacked release before the command runs
    setup:      with `ship_setup = true` in [executors.batch], each product of the release's setup build (a
                venv, an R library: what deploy/setup.py links into the release) goes up once per build as
                <prefix>setup/<project>/<build>/<name>.tar.gz and is unpacked in its place (issue 26: for an
                image without the packages; the trade-off is in docs/guides/past-one-vm.md)
    outputs:,   the entrypoint packs what the patterns (FLANK_RESULTS, repo-relative, one a line) match
    artifacts:  after the command, success or not, into a tarball it PUTs to a presigned URL
                (FLANK_RESULTS_URL: <prefix>jobs/<job name>.<random>/results.tar.gz); flank unpacks it
                into the release on the VM when the job is over, before the task counts as done, so
                dependents, fingerprints (checked_task), kept artifacts and the site find the files where a
                local task would have left them

The per-job objects are deleted once the files are back (a lifecycle rule on jobs/ cleans up after a
crash, README). What the job cannot see: inputs outside the repo (refused by validation already).
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from flank_ops.config.model import Task
from flank_ops.config.repo_paths import repo_relative
from flank_ops.incremental.fingerprints import HASH_NAME, is_glob

STAGED_PREFIX = "staged/"
JOBS_PREFIX = "jobs/"
ENV_STAGE_URL = "FLANK_STAGE_URL"  # presigned GET of the inputs list
ENV_RESULTS = "FLANK_RESULTS"  # repo-relative patterns of outputs: and artifacts:, one a line
ENV_RESULTS_URL = "FLANK_RESULTS_URL"  # presigned PUT of the results tarball
READ_CHUNK = 1 << 20


class Staging(NamedTuple):
    """What a task sends and gets back: repo-relative paths and patterns."""

    inputs: tuple[str, ...]  # files, repo-relative
    results: tuple[str, ...]  # patterns, repo-relative (outputs: then artifacts:)


class StagingError(Exception):
    """A declared file that cannot be sent (the message names it)."""


def task_staging(task: Task | None, release_dir: str) -> Staging:
    """The files `task` declares, as they are in the release on the VM now. Raises StagingError."""
    if task is None:
        return Staging((), ())
    inputs: list[str] = []
    for pattern in task.inputs:
        rel = repo_relative(task.dir, pattern)
        if rel is None:
            raise StagingError(f"input {pattern} leads out of the repo")
        # one that is not there is not sent: the command meets its absence as it would on the VM
        inputs.extend(f for f in _files(Path(release_dir), rel) if f not in inputs)
    results: list[str] = []
    for pattern in (*task.outputs, *task.artifacts):
        rel = repo_relative(task.dir, pattern)
        if rel is None:
            raise StagingError(f"{pattern} leads out of the repo")
        if rel not in results:
            results.append(rel)
    for path in (*inputs, *results):
        if "\n" in path or "\r" in path:
            raise StagingError(f"{path!r}: a file name with a line break cannot be staged")
    return Staging(tuple(inputs), tuple(results))


def _files(root: Path, rel: str) -> Iterable[str]:
    """Repo-relative files `rel` (a path or a glob) names; a folder stands for the files in it."""
    import glob

    names = sorted(glob.glob(rel, root_dir=root, recursive=True)) if is_glob(rel) else [rel]
    for name in names:
        full = root / name
        if full.is_dir():
            for folder, dirs, files in os.walk(full):
                dirs.sort()
                for f in sorted(files):
                    yield os.path.relpath(os.path.join(folder, f), root)
        elif full.exists():
            yield os.path.normpath(name)


def content_key(prefix: str, digest: str) -> str:
    """The object key of a file's content, by the fingerprints' digest (incremental/fingerprints.py, cached
    by stat: an input the task's fingerprint just hashed costs no second read): <prefix>staged/xxh3_128-<hex>."""
    return f"{prefix}{STAGED_PREFIX}{HASH_NAME}-{digest}"


def hash_cache_file(release_dir: str, commit: str, check_path: str) -> Path | None:
    """The fingerprints' hash cache for a task's files: its check file's, else a deployed release's
    project's; None (no cache: each file read) for a laptop's task without outputs."""
    import json

    if check_path:
        try:
            return Path(json.loads(Path(check_path).read_text())["hash_cache"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    release = Path(release_dir)
    if commit and release.name == commit and release.parent.name == "releases":
        from flank_ops.paths import Home, ProjectPaths

        return ProjectPaths(Home(release.parents[2]), release.parents[1].name).hash_cache
    return None


FILE, TREE = "file", "tree"  # an inputs list line's kind: a file to put at PATH, a tarball to unpack as PATH


def inputs_list_text(entries: Iterable[tuple[str, str, str]]) -> str:
    """`KIND URL PATH` lines the entrypoint reads (a URL holds no space; the path is the rest of the line)."""
    return "".join(f"{kind} {url} {path}\n" for kind, url, path in entries)


def setup_products(release_dir: str, commit: str) -> tuple[str | None, list[tuple[str, Path]]]:
    """(the setup build a deployed release runs in, [(name at the release's top, what it links to in that
    build)]): what `setup:` made (deploy/setup.py links each product into the release). (None, []) for a
    release without setup, or a laptop's working copy."""
    from flank_ops.paths import Home, ProjectPaths
    from flank_ops.store.deploy_log import release_setup_build

    release = Path(release_dir)
    if not commit or release.name != commit or release.parent.name != "releases":
        return None, []
    paths = ProjectPaths(Home(release.parents[2]), release.parents[1].name)
    build = release_setup_build(paths, commit)
    if not build:
        return None, []
    build_dir = (paths.setup_dir / "builds" / build).resolve()
    found = []
    for entry in sorted(os.listdir(release)):
        link = release / entry
        if link.is_symlink():
            target = link.resolve()
            if target.is_relative_to(build_dir) and target.exists():
                found.append((entry, target))
    return build, found


def product_tarball(name: str, target: Path, folder: Path) -> Path:
    """A setup product as folder/<name>.tar.gz, unpacking to `name` (links inside kept as links)."""
    path = folder / f"{name}.tar.gz"
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        tar.add(target, arcname=name)
    return path


def unpack_results(tarball: Path, release_dir: Path) -> int:
    """The job's results into the release: regular files (and their folders) only, each at its
    repo-relative path; a persisted folder (a symlink in the release) is followed as a local task's
    writes would be. Returns how many files. Raises StagingError for a name that leaves the repo."""
    count = 0
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name in (".", "") or member.isdir():
                continue
            if os.path.isabs(name) or name == ".." or name.startswith("../"):
                raise StagingError(f"the job sent back {member.name!r}, which is outside the repo")
            if not member.isfile():
                continue  # links and devices stay in the container
            source = tar.extractfile(member)
            if source is None:
                continue
            dest = release_dir / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.flank-part")
            with source, open(tmp, "wb") as out:
                while chunk := source.read(READ_CHUNK):
                    out.write(chunk)
            os.chmod(tmp, stat.S_IMODE(member.mode) & 0o755 | 0o600)
            os.replace(tmp, dest)
            count += 1
    return count
