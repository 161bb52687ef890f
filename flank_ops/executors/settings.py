"""Which executors this VM has: flank.toml's [executors.<kind>] tables (issue 14)."""

from __future__ import annotations

from pathlib import Path

from flank_ops.executors.base import not_configured_message
from flank_ops.paths import Home
from flank_ops.settings import executor_table as table_of
from flank_ops.settings import settings_for


class NotConfigured(Exception):
    """A task names an executor flank.toml does not configure; the message gives the lines to add."""


def executor_settings(kind: str, project: str | None = None, home_root: str | None = None) -> dict[str, str]:
    """The executor's options from flank.toml (values as strings). Raises NotConfigured."""
    home = Home(Path(home_root)) if home_root else Home()
    table = table_of(settings_for(home, project), kind)
    if table is None:
        raise NotConfigured(not_configured_message(kind, home.settings_file))
    return {k: str(v) for k, v in table.items() if not isinstance(v, dict)}


def configured(home: Home, project: str | None, kind: str) -> bool:
    return table_of(settings_for(home, project), kind) is not None
