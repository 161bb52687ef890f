"""Where each page lives in the site folder, and the relative link to it.

    site/index.html                                   home
    site/_static/style.css                            the one stylesheet
    site/<project>/index.html                         project: pipelines + recent deploys
    site/<project>/deploys.html                       every push handled
    site/<project>/resources.html                     memory and time the pipelines' recent runs used
    site/<project>/_setup/<log>.txt                   a deploy's setup log (issue 13)
    site/<project>/<pipeline>/index.html              pipeline: schedule, DAG, newest runs, trend
    site/<project>/<pipeline>/runs-<k>.html           history by run id: #1-50 is k=1, #51-100 k=2 ...
    site/<project>/<pipeline>/<run_id>/index.html     run (the git note links here)
    site/<project>/<pipeline>/<run_id>/outputs.html    every kept file of the run, all images shown
    site/<project>/<pipeline>/<run_id>/logs/<task>.html   log tail
    site/<project>/<pipeline>/<run_id>/logs/<task>.txt    the raw log (hard link or copy)
    site/<project>/<pipeline>/<run_id>/logs/<task>.txt.gz a gzip copy of a big log, made once the task ended
    site/<project>/<pipeline>/<run_id>/artifacts/<task>/<path>   a kept artifact (hard link to the run's copy)
    site/<project>/<pipeline>/<run_id>/artifacts/<task>/<path>.thumb.webp   its thumbnail, when it is a big image
    site/<project>/<pipeline>/latest/<task>/<path>    the newest successful run's artifact: a stable URL

Links between pages are relative, so the site works under any URL prefix, on S3
or from file://. Addresses handed out of the site (push output, `flank run`, git notes,
notifications) are `absolute_url(base_url, url_...)`: the same file, under flank.toml's site_url.
`file_name` is injective and keeps `_static`, `index.html`, `deploys.html` and `runs-<k>.html`
for the site itself, so no project, pipeline or task name can clash with them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote

from flank_ops.errors import UserError
from flank_ops.paths import Home
from flank_ops.settings import settings_for, site_url
from flank_ops.site.data import PAGE_SIZE

STATIC_DIR = "_static"
CSS_FILE = "style.css"
ACTIONS_JS = "actions.js"  # issue 23: reveals the action buttons when `flank serve --actions` answers
# Where `flank serve --actions` answers (sign-in, session, run, cancel, live events): at the host's
# root, so that nginx proxies this one path to it (README) and serves the rest itself.
API_PREFIX = "/api/"
PARAM_FIELD = "p."  # issue 23: an action form's field for the pipeline parameter NAME is p.NAME
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")
# What a stand-in looks like: a name of that shape is never kept as it is, so a kept
# name can never equal another name's stand-in.
_STAND_IN = re.compile(r"-[0-9a-f]{10}$")
# Names the site itself uses next to project and pipeline folders.
SETUP_LOGS_DIR = "_setup"  # issue 13: site/<project>/_setup/<log>.txt
_RESERVED = {"index", "logs", STATIC_DIR.lower(), SETUP_LOGS_DIR}


def file_name(name: str) -> str:
    """A file/folder name for a project, pipeline or task; injective (two names never share one).

    Odd names (HTML, slashes), names of the site's own files (`index.html`,
    `deploys.html`, `runs-1.html`, `_static`) and names shaped like a stand-in get
    a stand-in: a readable stem and a digest of the whole name.
    """
    if (
        _SAFE_NAME.match(name)
        and name.lower() not in _RESERVED
        and not _STAND_IN.search(name)
        and not name.lower().endswith(".html")
    ):
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "task"
    return f"{stem}-{digest}"


def archive_number(run_id: int) -> int:
    return (max(run_id, 1) - 1) // PAGE_SIZE + 1


def archive_range(number: int) -> tuple[int, int]:
    return (number - 1) * PAGE_SIZE + 1, number * PAGE_SIZE


class SiteLayout:
    """Paths (for writing) and site-relative URLs (for linking) of every page."""

    def __init__(self, site_dir: Path) -> None:
        self.root = Path(site_dir)

    # files
    def home_page(self) -> Path:
        return self.root / "index.html"

    def css(self) -> Path:
        return self.root / STATIC_DIR / CSS_FILE

    def project_dir(self, project: str) -> Path:
        return self.root / file_name(project)

    def pipeline_dir(self, project: str, pipeline: str) -> Path:
        return self.project_dir(project) / file_name(pipeline)

    def run_dir(self, project: str, pipeline: str, run_id: int) -> Path:
        return self.pipeline_dir(project, pipeline) / str(run_id)

    def file(self, url: str) -> Path:
        """The file behind a site-relative URL made by the methods below."""
        from urllib.parse import unquote

        return self.root / unquote(url)


# site-relative URLs (always to a file, so file:// browsing works)
def url_home() -> str:
    return "index.html"


def url_css() -> str:
    return f"{STATIC_DIR}/{CSS_FILE}"


def url_actions_js() -> str:
    return f"{STATIC_DIR}/{ACTIONS_JS}"


def url_project(project: str) -> str:
    return f"{quote(file_name(project))}/index.html"


def url_deploys(project: str) -> str:
    return f"{quote(file_name(project))}/deploys.html"


def url_setup_log(project: str, log_name: str) -> str:
    """issue 13: a setup's log, as text (log_name: setup/logs/<name> of deploys.jsonl)."""
    return f"{quote(file_name(project))}/{SETUP_LOGS_DIR}/{quote(log_name)}.txt"


def url_resources(project: str) -> str:
    return f"{quote(file_name(project))}/resources.html"


def url_pipeline(project: str, pipeline: str) -> str:
    return f"{quote(file_name(project))}/{quote(file_name(pipeline))}/index.html"


def url_archive(project: str, pipeline: str, number: int) -> str:
    return f"{quote(file_name(project))}/{quote(file_name(pipeline))}/runs-{number}.html"


def url_run(project: str, pipeline: str, run_id: int) -> str:
    return f"{quote(file_name(project))}/{quote(file_name(pipeline))}/{int(run_id)}/index.html"


def url_run_outputs(project: str, pipeline: str, run_id: int) -> str:
    """issue 28: every kept file of the run, every image shown (the run page shows a bounded number)."""
    return f"{quote(file_name(project))}/{quote(file_name(pipeline))}/{int(run_id)}/outputs.html"


def url_log(project: str, pipeline: str, run_id: int, task: str) -> str:
    return f"{quote(file_name(project))}/{quote(file_name(pipeline))}/{int(run_id)}/logs/{quote(file_name(task))}.html"


def url_raw_log(project: str, pipeline: str, run_id: int, task: str) -> str:
    return f"{quote(file_name(project))}/{quote(file_name(pipeline))}/{int(run_id)}/logs/{quote(file_name(task))}.txt"


def url_raw_log_gz(project: str, pipeline: str, run_id: int, task: str) -> str:
    return url_raw_log(project, pipeline, run_id, task) + ".gz"


# issue 11: a task's kept files (run/artifacts.py) and their stable latest/ URLs. `path` is the
# kept name relative to the task's dir, already free of '..' and control characters.
LATEST_DIR = "latest"


def url_artifact(project: str, pipeline: str, run_id: int, task: str, path: str) -> str:
    return (
        f"{quote(file_name(project))}/{quote(file_name(pipeline))}/{int(run_id)}/artifacts/"
        f"{quote(file_name(task))}/{quote(path)}"
    )


THUMB_SUFFIX = ".thumb.webp"


def url_thumbnail(url: str) -> str:
    """issue 19: a kept image's thumbnail (site/thumbnails.py), beside its published copy at `url`."""
    return url + THUMB_SUFFIX


def url_latest(project: str, pipeline: str, task: str, path: str) -> str:
    return (
        f"{quote(file_name(project))}/{quote(file_name(pipeline))}/{LATEST_DIR}/{quote(file_name(task))}/{quote(path)}"
    )


# issue 20 item 3: a kept file is the task's, not the site's: an HTML report or SVG must not run with
# the site's origin (it could read every page and log). Served with this header (flank serve, the
# README's nginx recipe and CloudFront policy), it runs in a sandbox with an opaque origin: its inline
# scripts and styles work (a self-contained R Markdown report), reading the site does not.
KEPT_FILE_CSP = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-downloads allow-modals"


def is_kept_file(url: str) -> bool:
    """Whether the site-relative `url` (unquoted or not) is a kept file: <run_id>/artifacts/... or latest/..."""
    parts = url.lstrip("/").split("/")
    return len(parts) > 4 and (parts[2] == LATEST_DIR or (parts[2].isdigit() and parts[3] == "artifacts"))


def absolute_url(base_url: str, url: str) -> str:
    """The absolute address of the page at site-relative `url` under the site's base URL; a folder's
    index.html is left off (flank serve, nginx and S3 websites all answer a folder with it)."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    return base + url.removesuffix("index.html")


def run_url(base_url: str, project: str, pipeline: str, run_id: int) -> str:
    """The run's page, as git notes, notifications and `flank run` give it."""
    return absolute_url(base_url, url_run(project, pipeline, run_id))


def run_page_url(home: Home, project: str, pipeline: str, run_id: int) -> str | None:
    """run_url under the project's site_url from flank.toml; None when flank.toml cannot be read (the
    command that reads it says why)."""
    try:
        return run_url(site_url(settings_for(home, project)), project, pipeline, run_id)
    except UserError:
        return None


def project_url(base_url: str, project: str) -> str:
    """The project's page, as a push's output gives it."""
    return absolute_url(base_url, url_project(project))


def depth_prefix(url: str) -> str:
    """'../' repeated so that a page at `url` can reach the site root."""
    return "../" * url.count("/")
