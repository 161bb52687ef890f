"""S3 and the artifacts a run keeps (issue 11).

A run's kept files live in its folder (runs/<pipeline>/<id>/artifacts/...), so the run upload
(s3.upload_run) sends them with its record and logs: streamed, multipart past [s3] multipart_mb,
each with its Content-Type. The published site holds them too (Outputs, latest/): a latest/
URL keeps its name while its content changes from run to run, so like a page it must be
revalidated by browsers and CDNs, never served stale from a cache.
"""

from __future__ import annotations

from flank_ops.site import layout

NO_CACHE = {"CacheControl": "no-cache"}


def site_upload_args(rel: str) -> dict[str, str] | None:
    """Extra S3 arguments for the site file at `rel` (relative to the site root)."""
    parts = rel.split("/")
    if rel.endswith(".html") or (len(parts) > 3 and parts[2] == layout.LATEST_DIR):
        return dict(NO_CACHE)
    return None
