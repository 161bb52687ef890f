"""The steps around a run, in the order they happen:

    start    ping <ping_url>/start                    notify/ping.py
    running  the run's pages redrawn                  site/build.py
    end      finish_run(context, record), each step independent:
               note     a line on the commit's git note       git/notes.py
               site     the run's pages, final                 site/build.py
               s3       record and logs up, site published     storage/uploads.py
               notify   webhook / e-mail as notify: asks       notify/dispatch.py
               ping     <ping_url> or <ping_url>/fail          notify/ping.py
               vm_size  shrink the VM when its window ended    cost/shrink.py

`flank run` hands RUN_STEPS to run.runner.run_pipeline. A step that fails never loses the
record nor stops the next step: its error is printed and kept in run.json["after_run"],
which the site and `flank status` show.

`flank run` answers before its final pages are drawn (issue 22: that draw was a third of a
no-change run): the site step then draws last, from the final record (every step's outcome in
it), in a forked copy of the process (run/launch.py fork_detached); a draw that fails puts its
error in run.json. Only a site that S3 publishes right after it is drawn first, in the run.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from flank_ops.cost import shrink
from flank_ops.errors import UserError
from flank_ops.fileio import locked
from flank_ops.git.notes import append_note, note_line
from flank_ops.humanize import page_zone
from flank_ops.notify import dispatch, ping
from flank_ops.notify.message import Message
from flank_ops.paths import ProjectPaths
from flank_ops.run.launch import fork_detached
from flank_ops.run.runner import RunContext
from flank_ops.settings import s3_settings, site_url
from flank_ops.site import build, layout
from flank_ops.storage.uploads import upload_finished_run
from flank_ops.store import records
from flank_ops.store.model import RunRecord, params_text, triggered_by_text
from flank_ops.task.secrets import mask


def add_git_note(context: RunContext, record: RunRecord) -> str | None:
    """One line for the run on its commit's note (refs/notes/flank)."""
    paths = context.paths
    if paths.local:
        return None  # a laptop working copy has no bare repo to annotate
    sha = record.commit.sha
    if not sha:
        return "no commit to annotate"
    page = layout.run_url(site_url(context.settings()), record.project, record.pipeline, record.run_id)
    # in the zone of the project's pages (humanize.page_zone), so the note and the run page agree
    zone = page_zone(p.timezone for p in context.deployed.config.pipelines.values())
    full = records.last_full_run(paths, record.pipeline) if record.selection.rerun_of is not None else None
    completes = full["run_id"] if full and full.get("completed_by") == record.run_id else None
    by = triggered_by_text(record.triggered_by)
    line = note_line(record, page, zone, completes, by, params=params_text(record))
    append_note(paths, sha, mask(line, context.secrets))
    return "ok"


def draw_site(context: RunContext, record: RunRecord) -> str | None:
    build.draw_run(context.paths, record.pipeline, record.run_id, record)  # the record held, not re-read
    return "ok"


def upload_to_s3(context: RunContext, record: RunRecord) -> str | None:
    settings = context.settings_or_error
    # a broken flank.toml: uploads reads it again and says "s3: not uploaded: <why>"
    return upload_finished_run(
        context.paths, record.pipeline, record.run_id, settings if isinstance(settings, dict) else None
    )


def shrink_vm(context: RunContext) -> str | None:
    """With a `flank cost` plan applied, a run that ends its window shrinks the VM."""
    paths = context.paths
    if paths.local or not paths.home.cost_plan.exists():
        return None  # the common case costs one stat
    return shrink.shrink_after_run(paths.home)


def _site_published(context: RunContext) -> bool:
    """Whether the S3 step publishes the site (it must then be drawn before it)."""
    settings = context.settings_or_error
    if not isinstance(settings, dict):
        return False
    try:
        s3 = s3_settings(settings)
    except UserError:
        return False  # the S3 step says why it uploaded nothing
    return s3 is not None and s3.publish_site


def _run_step(context: RunContext, name: str, step: Callable[[], str | None]) -> str | None:
    """The step's outcome; one that fails becomes "error: ..." (said on stderr), never an exception."""
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - one failing integration must not stop the others
        if isinstance(exc, UserError):
            detail = exc.message
        elif isinstance(exc, OSError) and records.is_disk_full(exc):
            detail = f"{records.disk_error(exc)}: free some disk space"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        outcome = mask(f"error: {detail}", context.secrets)
        print(f"flank: after the run, {name} failed: {outcome[len('error: ') :]}", file=sys.stderr)
        return outcome


def finish_run(context: RunContext, record: RunRecord, *, draw_after: bool = False) -> dict[str, str]:
    """Run every after-run step for a final record; store and return {step: outcome}. With
    `draw_after` the site is drawn last, after this returns (see the module's docstring)."""
    message: list[Message] = []

    def run_message() -> Message:  # one message for the notifications and the ping, built once
        if not message:
            message.append(dispatch.run_message(context, record))
        return message[0]

    draw_after = draw_after and not _site_published(context)
    steps: list[tuple[str, Callable[[], str | None]]] = [
        ("note", lambda: add_git_note(context, record)),
        ("site", (lambda: "ok") if draw_after else lambda: draw_site(context, record)),
        ("s3", lambda: upload_to_s3(context, record)),
        ("notify", lambda: dispatch.send_notifications(context, record, run_message)),
        ("ping", lambda: ping.ping_finished(context, record, lambda: run_message().as_text())),
        ("vm_size", lambda: shrink_vm(context)),
    ]
    outcomes: dict[str, str] = {}
    record.after_run = outcomes  # the page drawn by the site step shows the steps before it
    drawn_problems: list[str] = []
    for name, step in steps:
        outcome = _run_step(context, name, step)
        if outcome is not None:
            outcomes[name] = outcome
        if name == "site":
            drawn_problems = build.after_run_problems(outcomes)
    paths = context.paths
    run_dir = paths.run_dir(record.pipeline, record.run_id)
    try:
        records.write_record(run_dir, record)
    except OSError as exc:
        print(f"flank: could not save the after-run outcomes in run.json: {exc}", file=sys.stderr)
    if draw_after:
        _draw_after(context, record, run_dir)
    elif outcomes.get("site") == "ok" and build.after_run_problems(outcomes) != drawn_problems:
        try:  # a step after the drawing (S3, notify, ping) went wrong: the page says so (drawn once otherwise)
            build.redraw_run_page(paths, record.pipeline, record.run_id, record)
        except Exception as exc:  # noqa: BLE001 - the run is over and recorded
            print(f"flank: could not redraw the run's page: {exc}", file=sys.stderr)
    return outcomes


def _draw_after(context: RunContext, record: RunRecord, run_dir: Path) -> None:
    """The final draw, from the final record, in a forked copy; its failure goes into run.json."""

    def draw() -> None:
        outcome = _run_step(context, "site", lambda: draw_site(context, record))
        if outcome != "ok":
            record.after_run = {**record.after_run, "site": outcome or ""}
            records.write_record(run_dir, record)

    if not fork_detached(draw, context.paths.home.site_draws_lock):
        draw()


class _RunSteps:
    """run.runner.RunSteps for a run on this machine."""

    @contextlib.contextmanager
    def vm_busy(self, paths: ProjectPaths, out: TextIO) -> Iterator[None]:
        """While a run runs on the VM it holds the VM's busy lock shared, so `flank cost` never
        shrinks (stops) the VM under it; a shrink started just before it is cancelled (the run wins)."""
        if paths.local:
            yield
            return
        home = paths.home
        with locked(home.busy_lock, shared=True):
            if shrink.marker_path(home).exists():
                try:
                    said = shrink.cancel_pending(home)
                except UserError as exc:
                    said = f"could not cancel the VM's pending shrink: {exc.message}"
                if said:
                    print(f"flank: {said}", file=out, flush=True)
            yield

    def started(self, context: RunContext, record: RunRecord) -> None:
        ping.ping_started(context, record)

    def progress(self, paths: ProjectPaths, pipeline: str, run_id: int) -> None:
        build.draw_progress(paths, pipeline, run_id)

    def finished(self, context: RunContext, record: RunRecord) -> None:
        finish_run(context, record, draw_after=True)

    def interrupted(self, paths: ProjectPaths, pipeline: str, run_ids: list[int]) -> None:
        build.redraw_runs(paths, pipeline, run_ids)


RUN_STEPS = _RunSteps()
