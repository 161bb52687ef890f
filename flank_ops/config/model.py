"""The validated flank.yml, as plain immutable values.

Everything downstream (Makefiles, crontab, runner, site) reads these types;
nothing downstream reads YAML. Produced only by flank_ops.config.load.
"""
from __future__ import annotations

from dataclasses import dataclass, field

OVERLAP_POLICIES = ("skip", "queue")
NOTIFY_OUTCOMES = ("failure", "success", "recovery")
DEFAULT_NOTIFY = ("failure",)  # a pipeline without notify:, and a run whose flank.yml cannot be read
DEFAULT_RETRY_DELAY_S = 10.0
DEFAULT_CATCHUP_S = 6 * 3600.0  # a run missed while the VM was off is made up within this


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
    notify: tuple[str, ...] = DEFAULT_NOTIFY
    ping_url: str | None = None  # healthchecks.io-style dead-man's switch
    catchup_s: float = DEFAULT_CATCHUP_S  # 0 = never make up a missed scheduled run

    def topological_order(self) -> list[str]:
        """Task names, dependencies first, ties in flank.yml order (validated acyclic)."""
        # Depth-first, dependencies before dependents; an explicit stack so a chain of
        # thousands of tasks does not hit Python's recursion limit.
        order: list[str] = []
        seen: set[str] = set()
        for root in self.tasks:
            if root in seen:
                continue
            seen.add(root)
            stack = [(root, iter(self.tasks[root].needs))]
            while stack:
                name, deps = stack[-1]
                dep = next(deps, None)
                if dep is None:
                    stack.pop()
                    order.append(name)
                elif dep not in seen:
                    seen.add(dep)
                    stack.append((dep, iter(self.tasks[dep].needs)))
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
