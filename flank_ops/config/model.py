"""The validated flank.yml, as plain immutable values.

Everything downstream (Makefiles, crontab, runner, site) reads these types;
nothing downstream reads YAML. Produced only by flank_ops.config.load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

OVERLAP_POLICIES = ("skip", "queue")
NOTIFY_OUTCOMES = ("failure", "success", "recovery")
DEFAULT_NOTIFY = ("failure",)  # a pipeline without notify:, and a run whose flank.yml cannot be read
DEFAULT_RETRY_DELAY_S = 10.0
# issue 14: where a task runs (`executor:`); flank_ops/executors/ has one backend per remote kind
LOCAL = "local"
REMOTE_KINDS = ("slurm", "batch")
EXECUTOR_NAMES = (LOCAL, *REMOTE_KINDS)
DEFAULT_CATCHUP_S = 6 * 3600.0  # a run missed while the VM was off is made up within this
# issue 13: a setup that takes longer is killed (its whole process tree) and the deploy fails
DEFAULT_SETUP_TIMEOUT_S = 3600.0
# issue 13: the files whose content decides when setup runs again, when `key:` is not given
# (those found at the repo's root; with none, the command alone is the key)
DEFAULT_SETUP_KEYS = ("renv.lock", "DESCRIPTION", "requirements*.txt", "pyproject.toml", "uv.lock", "poetry.lock")
# issue 28 items 1, 10 / issue 19 friction 4: the inputs flank finds itself (`auto_inputs:`), beside `inputs:`
#   scripts  files of the repo named anywhere in the task's command
#   sources  what those scripts read as code, one level: R source()/sys.source(), Python local imports
#   setup    the environment `setup:` built for the release (its key and build)
AUTO_INPUT_KINDS = ("scripts", "sources", "setup")


# issue 23: run parameters (config/params.py parses and shows them)
PARAM_TYPES = ("string", "int", "number", "bool", "date", "choice")
ParamValue = str | int | float | bool  # a date is its YYYY-MM-DD text


@dataclass(frozen=True)
class Param:
    """One of a pipeline's `params:`: its name, type and default (issue 23)."""

    name: str
    type: str  # one of PARAM_TYPES
    default: ParamValue  # what scheduled runs (and runs given no value) use
    choices: tuple[str, ...] = ()  # type choice only
    description: str = ""


PLAIN_TARGET_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def make_target(task: str) -> str:
    """The make target (and spec file name) of a task. A declared task's name is its own target;
    a matrix instance's name (`model[region=north]`, issue 26) has characters make reads as
    syntax ('=', '[' ...), so each of those is written as '.' and its hex code:
    `model.5bregion.3dnorth.5d`. Task names never hold '.', so no two tasks share a target."""
    if PLAIN_TARGET_RE.match(task):
        return task
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else f".{ord(c):02x}" for c in task)


def instance_name(task: str, cell: tuple[tuple[str, str], ...], plain_list: bool = False) -> str:
    """issue 26: a matrix instance's name, `model[region=north,year=2024]` (`model[north]` for a plain
    list). Task names never hold '[', so the name says it is an instance."""
    inside = ",".join(v if plain_list else f"{k}={v}" for k, v in cell)
    return f"{task}[{inside}]"


def instance_parts(name: str) -> tuple[str, str] | None:
    """`model[region=north]` -> ("model", "region=north"); None for a task that is no instance."""
    task, bracket, rest = name.partition("[")
    return (task, rest[:-1]) if bracket and rest.endswith("]") else None


def cell_values(cell: str) -> str:
    """`region=north,year=2024` -> `north,2024`: an instance's values as `--task` takes them and narrow
    places show them (the timeline, the task grid); a plain list's cell is its value already."""
    return ",".join(pair.partition("=")[2] or pair for pair in cell.split(","))


def cell_matches(cell: tuple[tuple[str, str], ...], selector: str) -> bool:
    """issue 26: does an instance's cell match `region=north,year=2024` (or `north`, any key's value)?"""
    wanted = [part.strip() for part in selector.split(",") if part.strip()]
    pairs = set(cell)
    values = {v for _, v in cell}
    for part in wanted:
        key, eq, value = part.partition("=")
        if (eq and (key.strip(), value.strip()) not in pairs) or (not eq and part not in values):
            return False
    return bool(wanted)


# issue 26: `{region}` in a matrix task's inputs:, outputs: or artifacts: is the instance's value
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
LIST_MATRIX_KEY = "value"  # `matrix: [a, b]` (and a matrix_from: file of lines) -> FLANK_MATRIX_VALUE, `{value}`


def placeholders(pattern: str) -> list[str]:
    """The matrix keys a path names: `out/model_{region}_{year}.rds` -> [region, year]."""
    return PLACEHOLDER_RE.findall(pattern)


def cell_path(pattern: str, cell: tuple[tuple[str, str], ...]) -> str:
    """An instance's own path: each `{key}` of the pattern as the cell's value (an unknown key stays)."""
    values = dict(cell)
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), pattern)


def cells_glob(pattern: str) -> str:
    """What the instances of a matrix_from: task write together, before their cells are known:
    `out/model_{value}.rds` -> `out/model_*.rds` (a dependent's fingerprint hashes them all)."""
    return PLACEHOLDER_RE.sub("*", pattern)


@dataclass(frozen=True)
class Task:
    """One task of a pipeline, as flank.yml declares it (a matrix instance is one too)."""

    name: str
    run: str  # the shell command, run by /bin/sh -c
    needs: tuple[str, ...] = ()
    retries: int = 0  # extra attempts after a failure
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S  # first wait; doubles each retry
    timeout_s: float | None = None  # kills the whole process tree
    dir: str | None = None  # working directory, relative to the repo root
    env: dict[str, str] = field(default_factory=dict)
    # issue 14: declared resources and where the task runs
    memory_mb: int | None = None
    cpus: int | None = None
    executor: str | None = None  # None = the pipeline's (default "local")
    # issue 12: incremental runs — files read and written (paths or globs relative to `dir`);
    # a task with outputs is skipped when nothing it depends on changed (run/fingerprints.py)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    # issue 11: files kept with each run (paths or globs relative to the task's dir)
    artifacts: tuple[str, ...] = ()
    # the AUTO_INPUT_KINDS this task's fingerprint counts; None = its pipeline's
    auto_inputs: tuple[str, ...] | None = None
    # issue 26: fan-out. A `matrix:` task is expanded into instances named `model[region=north]`;
    # `group` is the declared name, `cell` the instance's (key, value) pairs (also FLANK_MATRIX_<KEY>
    # in env); `max_parallel` bounds how many instances of the group run at once.
    group: str | None = None
    cell: tuple[tuple[str, str], ...] = ()
    max_parallel: int | None = None
    # issue 26: `memory: [4G, 8G, 16G]`, one value per attempt (memory_mb is the first)
    memory_per_attempt_mb: tuple[int, ...] = ()
    # issue 26: per-task placement over the project's: `slurm: {partition, qos, gres, account, extra_args}`
    # and `batch: {queue, job_definition, image}` (executor option names: job_queue, job_definition, image)
    slurm: dict[str, str] = field(default_factory=dict)
    batch: dict[str, str] = field(default_factory=dict)
    # issue 26: a remote task's longest wait in the engine's queue (its `timeout:` counts running time)
    queue_timeout_s: float | None = None
    # issue 26: the cells are the lines (or a CSV's rows) of this file, written by a task in `needs:`;
    # the task is expanded into its instances when the run reaches it (run/matrix_from.py)
    matrix_from: str | None = None

    def instance(self, cell: tuple[tuple[str, str], ...], plain_list: bool = False) -> Task:
        """issue 26: this matrix task's instance for one cell: its values in env (FLANK_MATRIX_<KEY>)
        and in its inputs:, outputs: and artifacts: (`{region}`)."""
        return replace(
            self,
            name=instance_name(self.name, cell, plain_list),
            group=self.name,
            cell=cell,
            env={**self.env, **{f"FLANK_MATRIX_{k.upper()}": v for k, v in cell}},
            inputs=tuple(cell_path(p, cell) for p in self.inputs),
            outputs=tuple(cell_path(p, cell) for p in self.outputs),
            artifacts=tuple(cell_path(p, cell) for p in self.artifacts),
            matrix_from=None,
        )

    def executor_options(self, executor: str, project_slurm: dict[str, str]) -> dict[str, str]:
        """The flank.yml options a task's executor gets: the project's `slurm:` under the task's own."""
        if executor == "slurm":
            return {**project_slurm, **self.slurm}
        if executor == "batch":
            return {("job_queue" if k == "queue" else k): v for k, v in self.batch.items()}
        return {}


@dataclass(frozen=True)
class Pipeline:
    """One of flank.yml's `pipelines:`: its tasks, schedule and run settings."""

    name: str
    tasks: dict[str, Task]  # in flank.yml order
    schedule: tuple[str, ...] = ()  # Debian-cron expressions (5 fields or @daily etc.)
    timezone: str | None = None  # IANA name; None = the VM's local zone
    on_push: bool = False
    concurrency: int | None = None  # None = number of CPUs
    overlap: str = "skip"
    notify: tuple[str, ...] = DEFAULT_NOTIFY
    notify_set: bool = False  # notify: is written in flank.yml (only then does "nowhere to send" warn)
    ping_url: str | None = None  # healthchecks.io-style dead-man's switch
    catchup_s: float = DEFAULT_CATCHUP_S  # 0 = never make up a missed scheduled run
    # issue 14: the executor of tasks that name none ("local", "slurm", "batch")
    executor: str = "local"
    auto_inputs: tuple[str, ...] = AUTO_INPUT_KINDS  # for tasks that say none

    def auto_inputs_of(self, task: str) -> tuple[str, ...]:
        """The inputs flank finds itself for `task`: its own `auto_inputs:`, else the pipeline's."""
        own = self.tasks[task].auto_inputs
        return self.auto_inputs if own is None else own

    params: dict[str, Param] = field(default_factory=dict)  # issue 23, in flank.yml order

    def executor_of(self, task: str) -> str:
        """Where the task runs: its own `executor:`, else the pipeline's."""
        return self.tasks[task].executor or self.executor

    def instances_of(self, name: str) -> list[str]:
        """issue 26: the tasks a name stands for: a matrix task's instances (or those a `model[region=north]`
        matches), else the task itself ([] for an unknown name)."""
        if name in self.tasks:
            return [name]
        parts = instance_parts(name)  # `model[region=north]`: the instances that match
        if parts is not None:
            return [n for n, t in self.tasks.items() if t.group == parts[0] and cell_matches(t.cell, parts[1])]
        return [n for n, t in self.tasks.items() if t.group == name]

    def task_of(self, name: str) -> str | None:
        """The task of this pipeline a run record's task name stands for: itself, or (issue 26) for an
        instance of a matrix_from: task, which a run expands as it goes, that task; None when it is gone."""
        if name in self.tasks:
            return name
        parts = instance_parts(name)
        if parts is not None and parts[0] in self.tasks and self.tasks[parts[0]].matrix_from:
            return parts[0]
        return None

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
class Setup:
    """issue 13: `setup:`, run at deploy in the new release before `current` switches."""

    commands: tuple[str, ...]  # each run by /bin/sh -c in turn; the first failure stops setup
    key: tuple[str, ...] | None = None  # repo paths or globs; None = DEFAULT_SETUP_KEYS found at the root
    timeout_s: float = DEFAULT_SETUP_TIMEOUT_S


@dataclass(frozen=True)
class Config:
    """A validated flank.yml."""

    pipelines: dict[str, Pipeline]
    persist: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # issue 14: `slurm:` options (partition, account, qos, extra_args), over flank.toml's [executors.slurm]
    slurm: dict[str, str] = field(default_factory=dict)
    # issue 13: setup
    setup: Setup | None = None

    def task_count(self) -> int:
        return sum(len(p.tasks) for p in self.pipelines.values())
