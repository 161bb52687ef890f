"""What a flank.yml asks of this VM's executors (issue 14), said at push, `flank validate` and
`flank doctor`: executors named but not configured in flank.toml (with the lines to add), and
local tasks that declare more memory or CPUs than the VM has."""

from __future__ import annotations

from collections.abc import Iterator

from flank_ops.config.model import Config
from flank_ops.executors.base import LOCAL, not_configured_message
from flank_ops.paths import Home


def executors_used(config: Config) -> set[str]:
    return {p.executor_of(t) for p in config.pipelines.values() for t in p.tasks} - {LOCAL}


def config_warnings(home: Home, project: str | None, config: Config) -> list[str]:
    """One line per problem this VM has with the config (empty: none)."""
    from flank_ops.executors.resources import too_big, vm_cpus, vm_memory_mb
    from flank_ops.executors.settings import configured

    warnings = []
    for kind in sorted(executors_used(config)):
        if not configured(home, project, kind):
            tasks = [f"{p.name}.{t}" for p in config.pipelines.values() for t in p.tasks if p.executor_of(t) == kind]
            warnings.append(
                f"{', '.join(tasks[:5])}{' ...' if len(tasks) > 5 else ''}: "
                + not_configured_message(kind, home.settings_file)
            )
        elif kind == "batch":
            warnings += staging_warnings(home, project, config)
    try:
        vm_mb, vm_cpu = vm_memory_mb(), vm_cpus()
    except OSError:
        return warnings
    for pipeline in config.pipelines.values():
        for name, task in pipeline.tasks.items():
            if pipeline.executor_of(name) == LOCAL:
                problem = too_big(name, task.memory_mb, task.cpus, vm_mb, vm_cpu)
                if problem:
                    warnings.append(f"{pipeline.name}: {problem}")
    return warnings


def staging_warnings(home: Home, project: str | None, config: Config) -> list[str]:
    """issue 26: Batch tasks whose declared files go through S3, on a VM whose [executors.batch] has no
    bucket to put them in."""
    from flank_ops.settings import CONFIG_EXAMPLES, executor_table, settings_for

    table = executor_table(settings_for(home, project), "batch") or {}
    if table.get("bucket"):
        return []
    staged = [
        f"{p.name}.{task.group or name}"
        for p in config.pipelines.values()
        for name, task in p.tasks.items()
        if p.executor_of(name) == "batch" and (task.inputs or task.outputs or task.artifacts)
    ]
    if not staged:
        return []
    unique = list(dict.fromkeys(staged))  # a matrix task once
    shown = ", ".join(unique[:5]) + (" ..." if len(unique) > 5 else "")
    example = next(line for line in CONFIG_EXAMPLES["batch"].split("\n") if line.startswith("bucket"))
    return [
        f"{shown}: its inputs:, outputs: and artifacts: go through S3 on AWS Batch, and [executors.batch] of "
        f"flank.toml has no bucket: add {example}"
    ]


def doctor_problems(home: Home) -> Iterator[tuple[str, str, list[str]]]:
    """(kind, scope label, problems) of every executor configured in flank.toml."""
    from flank_ops.executors import backend
    from flank_ops.settings import executor_table, settings_for

    projects: list[str | None] = [*home.projects()] or [None]
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for project in projects:
        settings = settings_for(home, project)
        for kind in ("slurm", "batch"):
            table = executor_table(settings, kind)
            if table is None:
                continue
            options = {k: str(v) for k, v in table.items()}
            key = (kind, tuple(sorted(options.items())))
            if key in seen:
                continue
            seen.add(key)
            label = f" ({project})" if project and len(projects) > 1 else ""
            try:
                problems = backend(kind, options).check()
            except ImportError as exc:
                problems = [f"executor {kind} cannot load: {exc}"]
            yield kind, label, problems
            for tasks, placed in task_placements(home, project, kind):  # issue 26
                shown = ", ".join(tasks[:3]) + (" ..." if len(tasks) > 3 else "")
                try:
                    problems = backend(kind, {**options, **placed}).check()
                except ImportError as exc:
                    problems = [f"executor {kind} cannot load: {exc}"]
                yield kind, f" (task{'s' if len(tasks) > 1 else ''} {shown})", problems


# issue 26: the options a task's own placement changes, and so what doctor checks again for it
PLACEMENT_CHECKED = {"slurm": ("partition",), "batch": ("job_queue", "job_definition")}


def task_placements(home: Home, project: str | None, kind: str) -> list[tuple[list[str], dict[str, str]]]:
    """issue 26: (tasks, options) for each distinct placement that tasks of the project's deployed
    flank.yml give themselves (a partition, a job queue ...) on executor `kind`."""
    from flank_ops.errors import UserError
    from flank_ops.git.release_config import deployed_config
    from flank_ops.paths import ProjectPaths

    if project is None:
        return []
    try:
        config = deployed_config(ProjectPaths(home, project))
    except UserError:
        return []  # an unreadable flank.yml is said by doctor's own check of the project
    if config is None:
        return []
    found: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for pipeline in config.pipelines.values():
        for name, task in pipeline.tasks.items():
            if pipeline.executor_of(name) != kind:
                continue
            own = task.executor_options(kind, {})
            placed = tuple((k, v) for k, v in sorted(own.items()) if k in PLACEMENT_CHECKED[kind])
            if placed:
                label = f"{pipeline.name}.{task.group or name}"
                members = found.setdefault(placed, [])
                if label not in members:
                    members.append(label)
    return [(tasks, dict(placed)) for placed, tasks in found.items()]
