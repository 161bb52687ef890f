"""Publish $FLANK_HOME/site to S3, sending only what changed since the last publish.

A local manifest ($FLANK_HOME/.flank/s3-site-manifest.json) remembers, per target
(s3://bucket/prefix), each uploaded file's size, mtime and MD5. A file whose size
and mtime match is skipped without reading it; otherwise its MD5 decides. So a
rebuild that rewrites a page with the same bytes uploads nothing, and the cost of
a publish grows with what changed, not with the number of past runs (plus a stat
per file). Files gone locally (pruned runs) are deleted from the bucket.

An interrupted or failed publish saves what did go up; the rest is simply still
"changed" next time, so no pending list is needed for the site.

What goes where (`site_scope`): the VM-wide `[s3]` site target gets the whole site,
home page included. A target set by `[projects.NAME.s3]` gets only the pages of the
projects that publish there, and the shared assets (`_static/`) they link to:
nothing of other projects, no home page listing them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_json, locked
from flank_ops.paths import Home
from flank_ops.s3 import describe_error, make_client, upload_file
from flank_ops.settings import S3Settings, s3_settings, settings_for
from flank_ops.site import layout
from flank_ops.storage.artifacts import site_upload_args

MANIFEST_FORMAT = 1


class PublishResult(NamedTuple):
    uploaded: int
    deleted: int
    unchanged: int
    error: str | None

    def line(self) -> str:
        if self.error:
            return f"site publish failed ({self.error}); will retry on the next run or `flank sync`"
        if not self.uploaded and not self.deleted:
            return "site: up to date"
        text = f"site: {self.uploaded} changed file{'s' if self.uploaded != 1 else ''} published"
        if self.deleted:
            text += f", {self.deleted} removed"
        return text


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_manifest(home: Home) -> dict[str, Any]:
    try:
        with open(home.s3_site_manifest, encoding="utf-8") as f:
            data = json.load(f)
        if isinstance(data, dict) and isinstance(data.get("targets"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"format": MANIFEST_FORMAT, "targets": {}}


def site_scope(home: Home, settings: S3Settings) -> list[str] | None:
    """The projects whose pages go to `settings`' site target; None: the whole site
    (the target is the VM-wide [s3] one)."""
    target = (settings.site_bucket, settings.site_prefix)

    def target_of(project: str | None) -> tuple[str, str] | None:
        try:
            found = s3_settings(settings_for(home, project))
        except UserError:
            return None  # a wrong table publishes nothing here; the run's own S3 line says why
        return (found.site_bucket, found.site_prefix) if found is not None and found.publish_site else None

    if target_of(None) == target:
        return None
    return [name for name in home.projects() if target_of(name) == target]


def site_files(site_dir: Path, projects: list[str] | None = None) -> dict[str, Path]:
    """rel path -> file, skipping the temp files of an atomic write in progress.

    With `projects`, only their folders and the shared assets (see site_scope).
    """
    out: dict[str, Path] = {}
    for root, dirs, files in os.walk(site_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if projects is not None and Path(root) == Path(site_dir):
            keep = {layout.file_name(p) for p in projects} | {layout.STATIC_DIR}
            dirs[:] = [d for d in dirs if d in keep]
            continue  # the home page and any other file at the top belong to the whole site
        for name in files:
            if name.startswith(".") or name.endswith(".tmp"):
                continue
            path = Path(root) / name
            out[path.relative_to(site_dir).as_posix()] = path
    return out


def _upload_order(rel: str) -> tuple[bool, bool, str]:
    # assets and logs first, pages after, the home page last: a page never links to a file not yet up
    return (rel.endswith(".html"), rel == "index.html", rel)


def publish_site(
    home: Home, settings: S3Settings, client: Any | None = None, projects: list[str] | None = None
) -> PublishResult:
    """Upload the changed files of the site (only `projects`' pages when given, see
    site_scope); never raises for S3 failures (see PublishResult.error)."""
    if not home.site_dir.is_dir():
        return PublishResult(0, 0, 0, None)
    target = f"s3://{settings.site_bucket}/{settings.site_prefix}"
    uploaded = deleted = unchanged = 0
    with locked(home.s3_site_lock):
        manifest = _load_manifest(home)
        known: dict[str, dict[str, Any]] = dict(manifest["targets"].get(target) or {})
        local = site_files(home.site_dir, projects)
        try:
            for rel in sorted(local, key=_upload_order):
                path = local[rel]
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue  # replaced or pruned while we walk; the next publish sees it
                entry = known.get(rel)
                if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
                    unchanged += 1
                    continue
                md5 = _md5(path)
                if not (entry and entry.get("md5") == md5):
                    client = client or make_client(settings)
                    # pages change after every run: ask browsers and CDNs to revalidate
                    extra = site_upload_args(rel)  # pages and latest/ outputs: revalidated (storage/artifacts.py)
                    upload_file(client, settings, path, settings.site_bucket, settings.site_prefix + rel, extra)
                    uploaded += 1
                else:
                    unchanged += 1
                known[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": md5}
            for rel in sorted(set(known) - set(local)):
                client = client or make_client(settings)
                client.delete_object(Bucket=settings.site_bucket, Key=settings.site_prefix + rel)
                del known[rel]
                deleted += 1
            error = None
        except Exception as exc:  # noqa: BLE001 - an outage is reported, what went up is remembered
            error = describe_error(exc, settings)
        manifest["targets"][target] = known
        atomic_write_json(home.s3_site_manifest, manifest)
    return PublishResult(uploaded, deleted, unchanged, error)
