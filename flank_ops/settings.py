"""VM settings from $FLANK_HOME/flank.toml (all optional).

    site_url = "http://vm.example:8083/"    # base URL of the status site, used in push output and notes
    [s3] ... [notify] ... [ping] ...         # integrations (see README)
    [projects.NAME]                          # per-project overrides of any table above

`settings_for(home, project)` gives the VM-wide values with that project's overrides applied.
"""
from __future__ import annotations

import tomllib
from typing import Any

from flank_ops.errors import UserError
from flank_ops.paths import Home

DEFAULT_SITE_URL = "http://127.0.0.1:8083/"


def load_settings(home: Home) -> dict[str, Any]:
    path = home.settings_file
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: {exc}", "fix the TOML syntax of flank.toml") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def settings_for(home: Home, project: str | None = None) -> dict[str, Any]:
    raw = load_settings(home)
    overrides = (raw.get("projects") or {}).get(project, {}) if project else {}
    base = {k: v for k, v in raw.items() if k != "projects"}
    return _merge(base, overrides)


def site_url(settings: dict[str, Any]) -> str:
    url = str(settings.get("site_url") or DEFAULT_SITE_URL)
    return url if url.endswith("/") else url + "/"
