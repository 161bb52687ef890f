"""Load flank.yml into a validated Config.

PROVISIONAL: a minimal happy-path loader so other parts can be built against
the model. The full validator (line/column errors, did-you-mean, cron checks)
replaces the body of `load_config` keeping its signature.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from flank_ops.config.model import Config, Pipeline, Task
from flank_ops.errors import ConfigError, ConfigErrors

FILENAME = "flank.yml"


def _duration(value) -> float:
    s = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if s and s[-1] in units:
        return float(s[:-1]) * units[s[-1]]
    return float(s)


def load_config(text: str | bytes, filename: str = FILENAME) -> Config:
    """Parse and validate flank.yml text. Raises ConfigErrors listing every problem."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or "pipelines" not in data:
        raise ConfigErrors([ConfigError(filename, 1, 1, "flank.yml needs a 'pipelines:' mapping")])
    pipelines = {}
    for pname, p in data["pipelines"].items():
        tasks = {}
        for tname, t in p["tasks"].items():
            if isinstance(t, str):
                t = {"run": t}
            tasks[tname] = Task(
                name=tname,
                run=t["run"],
                needs=tuple(t.get("needs", ())),
                retries=int(t.get("retries", 0)),
                retry_delay_s=_duration(t.get("retry_delay", 10)),
                timeout_s=_duration(t["timeout"]) if "timeout" in t else None,
                dir=t.get("dir"),
                env={k: str(v) for k, v in (t.get("env") or {}).items()},
            )
        sched = p.get("schedule", ())
        pipelines[pname] = Pipeline(
            name=pname,
            tasks=tasks,
            schedule=(sched,) if isinstance(sched, str) else tuple(sched),
            timezone=p.get("timezone"),
            on_push=bool(p.get("on_push", False)),
            concurrency=p.get("concurrency"),
            overlap=p.get("overlap", "skip"),
            notify=tuple(p.get("notify", ("failure",))),
            ping_url=p.get("ping_url"),
        )
    return Config(
        pipelines=pipelines,
        persist=tuple(data.get("persist", ())),
        env={k: str(v) for k, v in (data.get("env") or {}).items()},
    )


def load_config_file(path: Path) -> Config:
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigErrors([ConfigError(str(path), 0, 0, "no such file")]) from None
    return load_config(text, str(path))


def describe(config: Config) -> str:
    """'1 pipeline, 4 tasks' — the summary line of `flank validate` and of a push."""
    p = len(config.pipelines)
    t = config.task_count()
    return f"{p} pipeline{'s' if p != 1 else ''}, {t} task{'s' if t != 1 else ''}"
