"""flank sync [PROJECT] [--all]: upload what S3 is missing, now.

Retries every run on a project's pending list (uploads that failed during an
outage) and publishes the site's changed files. `--all` uploads every finished
run, e.g. after turning S3 on for a VM with history.
"""

from __future__ import annotations

import argparse

from flank_ops.errors import UserError
from flank_ops.fileio import locked
from flank_ops.paths import Home, ProjectPaths
from flank_ops.settings import S3Settings, s3_settings, settings_for
from flank_ops.storage.site_publish import publish_site, site_scope
from flank_ops.storage.uploads import upload_pending
from flank_ops.store import pending, records
from flank_ops.store.model import FINISHED_RUN_STATUSES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="only this project (default: every project)")
    parser.add_argument("--all", action="store_true", help="upload every finished run, not just the pending ones")


def run(args: argparse.Namespace) -> int:
    home = Home()
    names = [home.project(args.project).require().name] if args.project else home.projects()
    if not names:
        raise UserError(f"no projects in {home.root}", "create one with: flank init NAME")

    failed = False
    site_targets: dict[tuple[str, str], S3Settings] = {}
    configured = 0
    for name in names:
        paths = home.project(name)
        settings = s3_settings(settings_for(home, name))
        if settings is None:
            print(f"{name}: S3 not configured, skipped")
            continue
        configured += 1
        with locked(paths.lock_file("s3")):
            if args.all:
                for pipeline in paths.pipelines_with_runs():
                    for run_id in records.list_run_ids(paths, pipeline):
                        if _finished(paths, pipeline, run_id):
                            pending.add_pending(paths, pipeline, run_id)
            before = len(pending.read_pending(paths))
            result = upload_pending(paths, settings)
        runs = len(result.runs)
        if result.error:
            failed = True
            print(f"{name}: uploaded {runs} of {before} runs ({result.files} files); failed: {result.error}")
            print(
                f"  {result.still_pending} still pending in {paths.s3_pending}; run `flank sync` again when S3 is back"
            )
        elif before:
            print(f"{name}: uploaded {runs} run{'s' if runs != 1 else ''} ({result.files} files)")
        else:
            print(f"{name}: nothing pending")
        if settings.publish_site:
            site_targets.setdefault((settings.site_bucket, settings.site_prefix), settings)

    if not configured:
        raise UserError(
            "S3 is not configured",
            f"add an [s3] table with a bucket to {home.settings_file} (see the README)",
        )
    for settings in site_targets.values():
        published = publish_site(home, settings, projects=site_scope(home, settings))
        print(f"s3://{settings.site_bucket}/{settings.site_prefix} {published.line()}")
        failed = failed or published.error is not None
    return 1 if failed else 0


def _finished(paths: ProjectPaths, pipeline: str, run_id: int) -> bool:
    try:
        record = records.read_record(paths.run_dir(pipeline, run_id))
    except (OSError, ValueError):
        return False
    return record.status in FINISHED_RUN_STATUSES
