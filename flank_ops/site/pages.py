"""Rendering pages with the Jinja2 templates of site_template/ (autoescaped, relative links)."""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from flank_ops import __version__, humanize
from flank_ops.config.model import cell_values, instance_parts
from flank_ops.errors import UserError
from flank_ops.package_data import package_folder
from flank_ops.site import fmt, layout

if TYPE_CHECKING:
    from types import ModuleType

    import jinja2


def template_dir() -> Path:
    return package_folder("site_template")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    import jinja2  # heavy: imported only when a page is rendered

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        # Templates ship with the package and never change under a running process;
        # compiled ones are cached on disk, as compiling costs more than a page
        # (every push and every run is a new process).
        auto_reload=False,
        bytecode_cache=_bytecode_cache(jinja2),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.ChainableUndefined,  # records written by older versions may lack keys
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=fmt.fmt_duration,
        kb=humanize.fmt_kb,
        bytes=humanize.fmt_bytes,
        time=fmt.fmt_time,
        time_short=fmt.fmt_time_short,
        icon=fmt.status_icon,
        label=fmt.status_label,
        skey=fmt.status_key,
        instance=instance_parts,  # issue 26: (task, "region=north") of a matrix instance, else None
        cell_values=cell_values,  # "region=north,year=2024" -> "north,2024"
    )
    env.globals.update(
        u=SimpleNamespace(
            home=layout.url_home,
            css=layout.url_css,
            project=layout.url_project,
            deploys=layout.url_deploys,
            pipeline=layout.url_pipeline,
            archive=layout.url_archive,
            resources=layout.url_resources,
            run=layout.url_run,
            run_outputs=layout.url_run_outputs,
            log=layout.url_log,
            raw=layout.url_raw_log,
            raw_gz=layout.url_raw_log_gz,
            actions_js=layout.url_actions_js,
        ),
        api_prefix=layout.API_PREFIX,
        param_fields=_param_fields,  # issue 23: the Run and Backfill forms' inputs
        param_field=layout.PARAM_FIELD,
        backfill_yes_over=_backfill_yes_over,
        version=__version__,
        zone=humanize.zone,
    )
    return env


# The Run and Backfill forms (_actions.html) are drawn only on pages with actions on: what they need
# is imported when they are drawn, not by every draw of the site (polish c).
def _param_fields(pipeline: Any) -> list[Any]:
    from flank_ops.config.params import param_fields

    return param_fields(pipeline)


def _backfill_yes_over() -> int:
    from flank_ops.schedule.backfill import MAX_WITHOUT_YES

    return MAX_WITHOUT_YES


def _bytecode_cache(jinja2: ModuleType) -> jinja2.BytecodeCache | None:
    import os

    from flank_ops.task.launcher import user_cache_dir

    folder = user_cache_dir() / f"jinja-{__version__}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only FLANK_HOME still renders, just slower
    if not os.access(folder, os.W_OK):
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def render(template: str, url: str, **context: Any) -> str:
    """Render `template` as the page at site-relative `url`."""
    from flank_ops.site.data import now_utc

    context.setdefault("actions", actions_on())
    context.setdefault("refresh", False)
    context.setdefault("warnings", [])
    context.setdefault("crumbs", [])
    return (
        environment()
        .get_template(template)
        .render(
            root=layout.depth_prefix(url),
            here=url,
            generated=fmt.fmt_time(now_utc(), context.get("tz")),
            **context,
        )
    )


_actions_seen: dict[tuple[str, int, bool], bool] = {}


def actions_on() -> bool:
    """Do pages carry the hidden action buttons (issue 23)? When flank.toml says [serve] actions = true,
    or `flank serve --actions` has run here. Asked per page: cached on flank.toml's mtime."""
    from flank_ops.paths import Home
    from flank_ops.settings import serve_settings

    home = Home()
    try:
        mtime = home.settings_file.stat().st_mtime_ns
    except OSError:
        mtime = 0
    key = (str(home.root), mtime, home.serve_actions_marker.exists())
    if key not in _actions_seen:
        try:
            _actions_seen[key] = key[2] or serve_settings(home).actions
        except UserError:
            _actions_seen[key] = key[2]  # a broken flank.toml is reported by what reads it for real
    return _actions_seen[key]


def actions_script() -> bytes:
    return (template_dir() / layout.ACTIONS_JS).read_bytes()


def stylesheet() -> bytes:
    return (template_dir() / "style.css").read_bytes()
