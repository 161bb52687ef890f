"""After a run: upload its record and logs to S3, then publish the status site.

    s3://BUCKET/PREFIX/<project>/runs/<pipeline>/<run-id>/run.json, tasks/*.json, logs/*.log
    s3://SITE_BUCKET/SITE_PREFIX/...   the static site (only changed files; see site_publish.py)

An outage never fails or loses a run: the run goes on the pending list
(pending.py) before its upload starts and leaves it only when every file is up;
the next run or `flank sync` retries. The client itself (boto3, content types,
multipart, error lines) is s3.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.fileio import locked
from flank_ops.paths import ProjectPaths
from flank_ops.s3 import describe_error, make_client, upload_file
from flank_ops.settings import S3Settings, s3_settings, settings_for
from flank_ops.storage.site_publish import publish_site, site_scope
from flank_ops.store import pending

RETRY_HINT = "will retry on the next run or `flank sync`"


class UploadResult(NamedTuple):
    runs: list[tuple[str, int]]  # (pipeline, run_id) fully uploaded
    files: int
    error: str | None  # why the upload stopped, or None
    still_pending: int


def run_key(settings: S3Settings, project: str, pipeline: str, run_id: int, rel: str) -> str:
    return f"{settings.prefix}{project}/runs/{pipeline}/{run_id}/{rel}"


def run_files(run_dir: Path) -> list[Path]:
    """Every file of a run, run.json last so a reader of the bucket never sees a record without its logs.
    A symlink is never followed (a run writes none: one would lead out of the run)."""
    files = [p for p in run_dir.rglob("*") if not p.is_symlink() and p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.name == "run.json", str(p)))


def upload_run(client: Any, settings: S3Settings, paths: ProjectPaths, pipeline: str, run_id: int) -> int:
    """Upload one run's folder; returns the number of files. Raises what boto3 raises."""
    run_dir = paths.run_dir(pipeline, run_id)
    files = run_files(run_dir)
    for path in files:
        rel = path.relative_to(run_dir).as_posix()
        upload_file(client, settings, path, settings.bucket, run_key(settings, paths.name, pipeline, run_id, rel))
    return len(files)


def upload_pending(paths: ProjectPaths, settings: S3Settings, client: Any | None = None) -> UploadResult:
    """Upload every run on the pending list, oldest first; stop at the first failure.

    The caller holds paths.lock_file("s3").
    """
    todo = pending.read_pending(paths)
    done: list[tuple[str, int]] = []
    files = 0
    for i, entry in enumerate(todo):
        pipeline, run_id = str(entry["pipeline"]), int(entry["run_id"])
        if not paths.run_dir(pipeline, run_id).is_dir():
            pending.remove_pending(paths, pipeline, run_id)  # pruned meanwhile: nothing left to lose
            continue
        try:
            client = client or make_client(settings)
            files += upload_run(client, settings, paths, pipeline, run_id)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the run pending
            error = describe_error(exc, settings)
            # S3 is down for all of them alike; say so on each entry the site shows
            for left in todo[i:]:
                pending.mark_failed(paths, str(left["pipeline"]), int(left["run_id"]), error)
            return UploadResult(done, files, error, len(pending.read_pending(paths)))
        pending.remove_pending(paths, pipeline, run_id)
        done.append((pipeline, run_id))
    return UploadResult(done, files, None, 0)


def upload_finished_run(
    paths: ProjectPaths, pipeline: str, run_id: int, settings: dict[str, Any] | None = None
) -> str | None:
    """Upload the run's record and logs (and publish the site); returns a status line or None if S3 is not configured.

    `settings`: the project's flank.toml (read here when not given). Never raises: an outage
    becomes a status line and the run stays pending.
    """
    try:
        s3 = s3_settings(settings if settings is not None else settings_for(paths.home, paths.name))
    except UserError as exc:
        return f"s3: not uploaded: {exc.message}"
    if s3 is None:
        return None
    return _upload_and_publish(paths, s3, pipeline, run_id)


def _upload_and_publish(paths: ProjectPaths, settings: S3Settings, pipeline: str, run_id: int) -> str:
    try:
        with locked(paths.lock_file("s3")):
            pending.add_pending(paths, pipeline, run_id)
            result = upload_pending(paths, settings)
        if result.error:
            return f"s3: upload failed ({result.error}); {RETRY_HINT}"
        line = f"s3: uploaded {result.files} file{'s' if result.files != 1 else ''}"
        earlier = len([r for r in result.runs if r != (pipeline, run_id)])
        if earlier:
            line += f" (with {earlier} earlier pending run{'s' if earlier != 1 else ''})"
        if settings.publish_site:
            line += "; " + publish_site(paths.home, settings, projects=site_scope(paths.home, settings)).line()
        return line
    except Exception as exc:  # noqa: BLE001 - the end of a run must not fail because of S3
        return f"s3: upload failed ({describe_error(exc, settings)}); {RETRY_HINT}"
