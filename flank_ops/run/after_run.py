"""What happens once a run's record is final: git note, site, notifications, S3.

Each step is independent and wrapped: a step that fails never loses the record
nor stops the next step; its error is printed and kept in run.json["after_run"].
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from flank_ops.errors import UserError
from flank_ops.paths import ProjectPaths
from flank_ops.run import records
from flank_ops.run.records import RunRecord
from flank_ops.run.secrets import mask


def _note(paths: ProjectPaths, record: RunRecord, secrets: dict[str, str], timezone: str | None) -> str | None:
    if paths.local:
        return None  # a laptop working copy has no bare repo to annotate
    sha = record.commit.get("sha")
    if not sha:
        return "no commit to annotate"
    from flank_ops.git.notes import append_note, note_line
    from flank_ops.settings import settings_for, site_url
    from flank_ops.site.layout import run_url

    page = run_url(site_url(settings_for(paths.home, paths.name)), paths.name, record.pipeline, record.run_id)
    line = mask(note_line(record, page, timezone), secrets)
    append_note(paths, sha, line)
    return "ok"


def _site(paths: ProjectPaths, record: RunRecord) -> str | None:
    from flank_ops.site import build

    build.after_run(paths, record.pipeline, record.run_id)
    return "ok"


def _notify(paths: ProjectPaths, record: RunRecord) -> str | None:
    from flank_ops.notify import dispatch

    return dispatch.after_run(paths, record)


def _s3(paths: ProjectPaths, record: RunRecord) -> str | None:
    from flank_ops.storage import s3

    return s3.after_run(paths, record)


def _shrink(paths: ProjectPaths) -> str | None:
    """The last step: with a `flank cost` plan applied, a run that ends its window shrinks the VM."""
    if paths.local or not paths.home.cost_plan.exists():
        return None  # the common case costs one stat, and no boto3 import
    from flank_ops.cost.shrink import shrink_after_run

    return shrink_after_run(paths.home)


def after_run(
    paths: ProjectPaths,
    record: RunRecord,
    *,
    secrets: dict[str, str] | None = None,
    timezone: str | None = None,
) -> dict[str, str]:
    """Run every after-run step for a final record; store and return {step: outcome}."""
    secrets = secrets or {}
    steps: list[tuple[str, Callable[[], str | None]]] = [
        ("note", lambda: _note(paths, record, secrets, timezone)),
        ("site", lambda: _site(paths, record)),
        ("notify", lambda: _notify(paths, record)),
        ("s3", lambda: _s3(paths, record)),
        ("vm_size", lambda: _shrink(paths)),
    ]
    outcomes: dict[str, str] = {}
    for name, step in steps:
        try:
            outcome = step()
        except Exception as exc:  # noqa: BLE001 - one failing integration must not stop the others
            if isinstance(exc, UserError):
                detail = exc.message
            elif isinstance(exc, OSError) and records.is_disk_full(exc):
                detail = f"{records.disk_error(exc)}: free some disk space"
            else:
                detail = f"{type(exc).__name__}: {exc}"
            outcome = mask(f"error: {detail}", secrets)
            print(f"flank: after the run, {name} failed: {outcome[len('error: '):]}", file=sys.stderr)
        if outcome is not None:
            outcomes[name] = outcome
    record.after_run = outcomes
    try:
        records.write_record(paths.run_dir(record.pipeline, record.run_id), record)
    except OSError as exc:
        print(f"flank: could not save the after-run outcomes in run.json: {exc}", file=sys.stderr)
    if outcomes.get("site") == "ok" and any(name not in ("note", "site") for name in outcomes):
        try:  # the run page was drawn before notify and S3 said how they went: show it
            from flank_ops.site import build

            build.redraw_run_page(paths, record.pipeline, record.run_id)
        except Exception as exc:  # noqa: BLE001 - the run is over and recorded
            print(f"flank: could not redraw the run's page: {exc}", file=sys.stderr)
    return outcomes
