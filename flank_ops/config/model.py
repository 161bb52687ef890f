"""The validated flank.yml, as plain immutable values.

Everything downstream (Makefiles, crontab, runner, site) reads these types;
nothing downstream reads YAML. Produced only by flank_ops.config.load.
"""
from __future__ import annotations

from dataclasses import dataclass, field

OVERLAP_POLICIES = ("skip", "queue")
NOTIFY_OUTCOMES = ("failure", "success", "recovery")
DEFAULT_RETRY_DELAY_S = 10.0


@dataclass(frozen=True)
class Task:
    name: str
    run: str  # the shell command, run by /bin/sh -c
    needs: tuple[str, ...] = ()
    retries: int = 0  # extra attempts after a failure
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S  # first wait; doubles each retry
    timeout_s: float | None = None  # kills the whole process tree
    dir: str | None = None  # working directory, relative to the repo root
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    name: str
    tasks: dict[str, Task]  # in flank.yml order
    schedule: tuple[str, ...] = ()  # Debian-cron expressions (5 fields or @daily etc.)
    timezone: str | None = None  # IANA name; None = the VM's local zone
    on_push: bool = False
    concurrency: int | None = None  # None = number of CPUs
    overlap: str = "skip"
    notify: tuple[str, ...] = ("failure",)
    ping_url: str | None = None  # healthchecks.io-style dead-man's switch

    def topological_order(self) -> list[str]:
        """Task names, dependencies first, ties in flank.yml order (validated acyclic)."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for dep in self.tasks[name].needs:
                visit(dep)
            order.append(name)

        for name in self.tasks:
            visit(name)
        return order

    def downstream(self, start: str) -> set[str]:
        """`start` and every task that (transitively) needs it."""
        result = {start}
        changed = True
        while changed:
            changed = False
            for t in self.tasks.values():
                if t.name not in result and any(d in result for d in t.needs):
                    result.add(t.name)
                    changed = True
        return result


@dataclass(frozen=True)
class Config:
    pipelines: dict[str, Pipeline]
    persist: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def task_count(self) -> int:
        return sum(len(p.tasks) for p in self.pipelines.values())
