"""Generated Makefiles: a pipeline's DAG as a GNU make file a person can read and run.

For each pipeline, `pipelines/<p>.mk` has one .PHONY target per task with its
`needs:` as prerequisites, and one recipe line per task that starts the task
launcher (launcher.py) on the task's spec:

    model: transform
        @$(FLANK_LAUNCHER) $(FLANK_SPECS)/model.spec $(RUN_DIR)

$(FLANK_SPECS) is one file holding every task's spec (`pipelines/<p>.tasks`, a run's
`plan/<p>.tasks`); `$(FLANK_SPECS)/model.spec` is a path into it (task_exec.py).

No task content ever enters make syntax: commands, directories and env values
live only in the spec files (NUL-separated, see task_exec.py), and appear in the
Makefile only inside sanitised comments. Task names are [A-Za-z0-9_-] (validated
by the config), so they are safe as targets and file names.

The recipe line holds no shell metacharacters, so make execs the launcher
directly, without a shell per task (the overhead budget is ~1.5x plain make).

Nothing from flank.yml reaches make's environment either: `flank run` starts make
with an environment of its own (make_environment: PATH, HOME, the locale...) and
hands each task its environment in the spec file, which only the launcher reads
(GNU make takes MAKEFLAGS, MAKEFILES, GNUMAKEFLAGS... from its environment; in
flank.yml's `env:` those are just variables a task's own make may use).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flank_ops.config.model import Config, Pipeline, Task, make_target
from flank_ops.errors import UserError
from flank_ops.executors.base import CHECK_OPTION
from flank_ops.fileio import atomic_symlink, atomic_write_text, umasked
from flank_ops.paths import ProjectPaths
from flank_ops.task.secrets import MAKE_CONTROL_VARIABLES

if TYPE_CHECKING:
    from flank_ops.task.task_exec import TaskSpec

SPEC_SUFFIX = ".spec"
CELLS_SPEC_SUFFIX = ".cells.json"  # issue 26: a matrix_from: task's spec, read by run/matrix_from.py
PLAN_DIR = "plan"
BY_HAND_RUN_DIR = "by-hand"

# Like make: a command with none of these is split on blanks and exec'd without a shell.
SHELL_METACHARACTERS = set("#;\"'*?[]&|<>(){}$`^~!\\\n\r")
SHELL_BUILTINS = frozenset(
    [
        ".",
        ":",
        "alias",
        "bg",
        "break",
        "case",
        "cd",
        "command",
        "continue",
        "do",
        "done",
        "elif",
        "else",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "fc",
        "fg",
        "for",
        "function",
        "getopts",
        "hash",
        "if",
        "jobs",
        "kill",
        "login",
        "logout",
        "pwd",
        "read",
        "readonly",
        "return",
        "select",
        "set",
        "shift",
        "source",
        "test",
        "then",
        "time",
        "times",
        "trap",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
        "[",
        "[[",
        "{",
    ]
)
SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9_./+,:@%=-]+$")


# --- the task spec -------------------------------------------------------------


def direct_argv(command: str) -> tuple[str, ...]:
    """The words to exec without a shell, or () when the command needs /bin/sh."""
    if any(c in SHELL_METACHARACTERS for c in command):
        return ()
    words = command.split()
    if not words or words[0] in SHELL_BUILTINS or "=" in words[0]:
        return ()
    return tuple(words)


def declared_env(env: dict[str, str]) -> dict[str, str]:
    """flank.yml's `env:` (the project's or a task's) as tasks see it: a leading `~` or `~user`
    expanded as a shell would (`R_LIBS_USER: ~/R/library`). The one place this happens: the
    runner, the spec files and so both launchers and a Makefile run by hand all get these values."""
    return {key: os.path.expanduser(value) if value.startswith("~") else value for key, value in env.items()}


def task_spec(
    task: Task,
    release_dir: Path,
    project_env: dict[str, str] | None = None,
    executor: str = "local",
    options: dict[str, str] | None = None,
) -> TaskSpec:
    """The launcher's spec of one task. The project's `env:` is in it too (the task's
    own `env:` wins), so a Makefile run by hand sees the same variables as `flank run`.
    `project_env` is already as tasks see it (declared_env, or the runner's task_env).
    `executor`: where it runs (issue 14), with that executor's `options` from flank.yml."""
    from flank_ops.task.task_exec import TaskSpec

    cwd = Path(os.path.normpath(Path(release_dir) / task.dir)) if task.dir else Path(release_dir)
    return TaskSpec(
        task=task.name,
        command=task.run,
        cwd=str(cwd),
        retries=task.retries,
        retry_delay_s=task.retry_delay_s,
        timeout_s=task.timeout_s or 0.0,
        argv=direct_argv(task.run),
        env=tuple({**(project_env or {}), **declared_env(task.env)}.items()),
        executor=executor,
        memory_mb=task.memory_mb or 0,
        cpus=task.cpus or 0,
        options=tuple((options or {}).items()),
        group=task.group or "",
        max_parallel=task.max_parallel or 0,
        memory_per_attempt_mb=task.memory_per_attempt_mb,
        queue_timeout_s=task.queue_timeout_s or 0.0,
    )


def uses_executor_entry(task: Task, executor: str) -> bool:
    """issue 14: make starts the task through `python -m flank_ops.executors` (a remote
    executor, or a local task whose declared memory/CPUs are checked first), not the launcher."""
    return executor != "local" or bool(task.memory_mb or task.cpus or task.max_parallel)


def _spec_bytes(
    task: Task,
    release_dir: Path,
    project_env: dict[str, str],
    executor: str = "local",
    options: dict[str, str] | None = None,
) -> bytes:
    from flank_ops.task.task_exec import encode_spec

    try:
        return encode_spec(task_spec(task, release_dir, project_env, executor, options))
    except ValueError as exc:
        raise UserError(f"cannot prepare the task: {exc}", "remove the NUL character from flank.yml") from None


# --- the Makefile text -----------------------------------------------------------


def make_word(value: str | Path) -> str:
    """A path as one word of a make assignment or command-line variable whose value
    make then passes to a recipe: shell-quoted if needed, `$` doubled for make."""
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise UserError(f"a path contains a line break: {text!r}", "move FLANK_HOME to a plain path")
    if SAFE_PATH_RE.match(text):
        return text
    return shlex.quote(text).replace("$", "$$")


def _assignment_value(value: str) -> str:
    # In a makefile (not on the command line) '#' would start a comment.
    return value.replace("#", "\\#")


def comment_text(text: str) -> list[str]:
    """Text made safe for make comment lines: one entry per line, no control
    characters, and no trailing backslash (which would continue the comment
    onto the next, real, line)."""
    lines = []
    for line in text.split("\n"):
        line = "".join(c if c == "\t" or ord(c) >= 0x20 and ord(c) != 0x7F else f"\\x{ord(c):02x}" for c in line)
        if line.endswith("\\"):
            line += " \u21a9"  # a visible mark; a backslash must not end the line
        lines.append(line)
    return lines


def _commit_label(release_dir: Path, commit: str | None) -> str:
    if commit:
        return commit
    name = Path(release_dir).name
    if re.fullmatch(r"[0-9a-f]{40}", name) and Path(release_dir).parent.name == "releases":
        return name
    return f"the working copy {release_dir}"


def render_makefile(
    pipeline: Pipeline,
    *,
    makefile_path: Path,
    specs_dir: Path,
    default_run_dir: Path,
    launcher_argv: list[str],
    release_dir: Path,
    commit: str | None = None,
    executor_argv: list[str] | None = None,
    checked: dict[str, Path] | None = None,
) -> str:
    """`checked`: tasks started through the checked launcher (issue 12, run/checked_task.py), with
    their check files; only a run's own plan has them."""
    names = pipeline.topological_order()
    checked = checked or {}
    # The every-task target: "all", unless a task has that name; then "flank.all", which no task
    # can be called ('.' is not allowed in task names), so it never shares a task's rule.
    aggregate = "all" if "all" not in pipeline.tasks else "flank.all"
    launcher = " ".join(make_word(w) for w in launcher_argv)
    mk = make_word(makefile_path)
    first = make_target(names[0]) if names else "TASK"
    out: list[str] = []
    add = out.append
    title = f"Pipeline {pipeline.name}: generated by flank from flank.yml at {_commit_label(release_dir, commit)}."
    out.extend(f"# {line}" for line in comment_text(title))
    add("# Do not edit: every push rewrites it. `flank run` runs it with a run record, notes and the site;")
    add("# you can also run it by hand (logs go to $(RUN_DIR)/logs/<task>.log, results to $(RUN_DIR)/tasks/):")
    add("#")
    add(f"#   make -k -j 2 -f {mk}                 # every task, 2 at a time")
    add(f"#   make -k -f {mk} {first}          # one task and what it needs")
    add(f"#   make -k -f {mk} RUN_DIR=/tmp/try    # logs elsewhere")
    add("#")
    add("# -k: after a failure, independent tasks go on; a failed task's dependents do not start.")
    add("")
    add("FLANK_LAUNCHER = " + _assignment_value(launcher))
    entry_tasks = [n for n in names if uses_executor_entry(pipeline.tasks[n], pipeline.executor_of(n))]
    dynamic = [n for n in names if pipeline.tasks[n].matrix_from]
    if entry_tasks:  # issue 14: remote tasks, and local ones with declared resources
        executor = " ".join(make_word(w) for w in executor_argv or executor_entry_argv())
        add("FLANK_EXECUTOR = " + _assignment_value(executor))
    if dynamic:  # issue 26: a matrix_from: task reads its cells, then runs its instances in a sub-make
        add("FLANK_CELLS = " + _assignment_value(" ".join(make_word(w) for w in cells_entry_argv())))
    add("FLANK_SPECS = " + _assignment_value(make_word(specs_dir)))
    add("RUN_DIR = " + _assignment_value(make_word(default_run_dir)))
    if checked:
        from flank_ops.task.launcher import python_launcher_argv

        checked_argv = [*python_launcher_argv()[:-1], "_task_checked"]
        add("FLANK_CHECKED_LAUNCHER = " + _assignment_value(" ".join(make_word(w) for w in checked_argv)))
    add("")
    add("MAKEFLAGS += --no-builtin-rules")
    add(".SUFFIXES:")
    add(f".DEFAULT_GOAL := {aggregate}")
    targets = {n: make_target(n) for n in names}
    add(f".PHONY: {aggregate}" + "".join(f" {targets[n]}" for n in names))
    add("")
    add(f"{aggregate}:" + "".join(f" {targets[n]}" for n in names))
    for name in names:
        task = pipeline.tasks[name]
        target = targets[name]
        add("")
        command_lines = comment_text(task.run)
        shown = name if target == name else f"{target} is {name}"
        if len(command_lines) == 1:
            add(f"# {shown}: {command_lines[0]}")
        else:
            add(f"# {shown}:")
            out.extend(f"#   {line}" for line in command_lines)
        details = _task_details(pipeline, name)
        if details:
            out.extend(f"#   ({line})" for line in comment_text(", ".join(details)))
        add(f"{target}:" + "".join(f" {make_target(d)}" for d in task.needs))
        spec = f"$(FLANK_SPECS)/{target}{SPEC_SUFFIX}"
        if name in dynamic:  # '+': the sub-make shares this make's job slots (-j) and -k
            add(f"\t+@$(FLANK_CELLS) $(FLANK_SPECS)/{target}{CELLS_SPEC_SUFFIX} $(RUN_DIR) $(FLANK_LAUNCHER)")
        elif name in entry_tasks and pipeline.executor_of(name) != "local":
            # issue 26: a remote task with outputs is fingerprinted and checked by its executor loop
            check = f" {CHECK_OPTION} {_assignment_value(make_word(checked[name]))}" if name in checked else ""
            add(f"\t@$(FLANK_EXECUTOR) {spec} $(RUN_DIR){check}")
        elif name in entry_tasks and name in checked:  # the VM has room, then the checked launcher (issue 12)
            add(
                f"\t@$(FLANK_EXECUTOR) {spec} $(RUN_DIR) $(FLANK_CHECKED_LAUNCHER) {_assignment_value(make_word(checked[name]))}"
            )
        elif name in entry_tasks:  # checks the VM has room, then execs the launcher
            add(f"\t@$(FLANK_EXECUTOR) {spec} $(RUN_DIR) $(FLANK_LAUNCHER)")
        elif name in checked:  # issue 12
            add(f"\t@$(FLANK_CHECKED_LAUNCHER) {_assignment_value(make_word(checked[name]))} {spec} $(RUN_DIR)")
        else:
            add(f"\t@$(FLANK_LAUNCHER) {spec} $(RUN_DIR)")
    groups: dict[str, list[str]] = {}
    for name in names:
        if pipeline.tasks[name].group:
            groups.setdefault(pipeline.tasks[name].group or "", []).append(targets[name])
    for group, instances in groups.items():  # issue 26: `make -f ... model` runs every instance
        add("")
        add(f"# {group}: its {len(instances)} matrix instances")
        add(f".PHONY: {group}")
        add(f"{group}:" + "".join(f" {t}" for t in instances))
    add("")
    return "\n".join(out)


def _task_details(pipeline: Pipeline, name: str) -> list[str]:
    """The settings a task's comment in the Makefile shows."""
    task = pipeline.tasks[name]
    details = []
    if task.dir:
        details.append(f"dir {task.dir}")
    if task.retries:
        details.append(f"retries {task.retries} (first after {task.retry_delay_s:g}s, doubling)")
    if task.timeout_s:
        details.append(f"timeout {task.timeout_s:g}s")
    if task.env:
        details.append("env " + " ".join(task.env))
    if pipeline.executor_of(name) != "local":
        details.append(f"executor {pipeline.executor_of(name)}")
    if task.memory_mb or task.cpus:
        details.append(
            " ".join(
                x for x in (task.memory_mb and f"memory {task.memory_mb}M", task.cpus and f"cpus {task.cpus}") if x
            )
        )
    if task.max_parallel:
        details.append(f"at most {task.max_parallel} of {task.group or name} at once")
    if task.matrix_from:
        details.append(f"one instance per cell of {task.matrix_from}, read when it starts; a sub-make runs them")
    return details


def cells_entry_argv() -> list[str]:
    """issue 26: what a recipe starts for a matrix_from: task (run/matrix_from.py)."""
    import sys

    return [sys.executable, "-m", "flank_ops.run.matrix_from"]


def executor_entry_argv() -> list[str]:
    """issue 14: what a recipe starts for a task going through flank_ops.executors."""
    import sys

    return [sys.executable, "-m", "flank_ops.executors"]


def _write_specs(
    specs_file: Path,
    pipeline: Pipeline,
    release_dir: Path,
    project_env: dict[str, str],
    mode: int = 0o644,
    slurm_options: dict[str, str] | None = None,
    cells_run: dict[str, Any] | None = None,
) -> None:
    """Every task's spec in one file, `specs_file` (issue 22: a file a task cost a 500-task run ~30 ms
    and more on a busy disk): the Makefile names a task's as `$(FLANK_SPECS)/<target>.spec`, a path
    into it that every reader of a spec takes (task_exec.py's read_spec_bytes). Written straight,
    with no temp file and no fsync: the file is new, and published only once complete (a symlink
    swap, or the run's own plan, which nothing reads before make starts)."""
    from flank_ops.task.task_exec import encode_specs_file

    entries: dict[str, bytes] = {}
    for name, task in pipeline.tasks.items():
        if task.matrix_from:  # issue 26: its instances' specs are written when its cells are read
            cells_spec = {
                "pipeline": pipeline.name,
                "task": name,
                "release_dir": str(release_dir),
                "project_env": project_env,
                "slurm": slurm_options or {},
                "mode": mode,
                "run": cells_run,  # a flank run's (incremental runs); None for a Makefile run by hand
            }
            entries[f"{make_target(name)}{CELLS_SPEC_SUFFIX}"] = json.dumps(cells_spec, indent=1).encode()
            continue
        executor = pipeline.executor_of(name)
        options = task.executor_options(executor, slurm_options or {})  # issue 26: the task's own win
        entries[f"{make_target(name)}{SPEC_SUFFIX}"] = _spec_bytes(task, release_dir, project_env, executor, options)
    specs_file.parent.mkdir(parents=True, exist_ok=True)
    if specs_file.is_dir() and not specs_file.is_symlink():
        shutil.rmtree(specs_file)  # a folder of a file a task: an older flank's plan, resumed (--resume)
    fd = os.open(specs_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with open(fd, "wb") as f:
        f.write(encode_specs_file(entries))


# --- the contract ------------------------------------------------------------------


def write_pipeline_files(paths: ProjectPaths, config: Config, release_dir: Path, commit: str | None = None) -> None:
    """Write pipelines/<p>.mk (+ task specs) for every pipeline; remove dropped pipelines' files.

    The specs file `<p>.tasks` is a symlink to a fresh `.<p>.tasks.<random>`
    file, switched in one rename, so the whole set is replaced at once.
    """
    from flank_ops.task.launcher import task_launcher_argv

    launcher_argv = task_launcher_argv()
    pipelines_dir = paths.pipelines_dir
    pipelines_dir.mkdir(parents=True, exist_ok=True)
    for pipeline in config.pipelines.values():
        link = paths.task_specs_dir(pipeline.name)
        import tempfile  # here: only a deploy writes these (a run does not load it)

        fd, name = tempfile.mkstemp(dir=pipelines_dir, prefix=f".{link.name}.")
        os.close(fd)
        fresh = Path(name)
        fresh.chmod(umasked(0o644))
        _write_specs(fresh, pipeline, release_dir, declared_env(config.env), slurm_options=config.slurm)
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)  # an old real folder (never produced by this version)
        atomic_symlink(fresh.name, link)
        text = render_makefile(
            pipeline,
            makefile_path=paths.makefile(pipeline.name),
            specs_dir=link,
            default_run_dir=paths.runs_dir(pipeline.name) / BY_HAND_RUN_DIR,
            launcher_argv=launcher_argv,
            release_dir=release_dir,
            commit=commit,
        )
        atomic_write_text(paths.makefile(pipeline.name), text, mode=0o644)
        _remove_old_spec_dirs(pipelines_dir, link.name, keep=fresh.name)
    _remove_dropped_pipelines(paths, config)


def _remove_old_spec_dirs(pipelines_dir: Path, link_name: str, keep: str) -> None:
    """Earlier deploys' specs: files, or folders of a file a task (flank before issue 22's one file)."""
    for entry in pipelines_dir.glob(f".{link_name}.*"):
        if entry.name == keep or entry.is_symlink():
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _remove_dropped_pipelines(paths: ProjectPaths, config: Config) -> None:
    for makefile in paths.pipelines_dir.glob("*.mk"):
        name = makefile.name[: -len(".mk")]
        if name in config.pipelines:
            continue
        link = paths.task_specs_dir(name)
        makefile.unlink(missing_ok=True)
        if link.is_symlink() or link.is_file():
            link.unlink(missing_ok=True)
        elif link.is_dir():
            shutil.rmtree(link, ignore_errors=True)
        _remove_old_spec_dirs(paths.pipelines_dir, link.name, keep="")


def write_run_plan(
    run_dir: Path,
    pipeline: Pipeline,
    config: Config,
    release_dir: Path,
    commit: str | None = None,
    task_env: dict[str, str] | None = None,
    checked: dict[str, Path] | None = None,
    cells_run: dict[str, Any] | None = None,
) -> Path:
    """The run's own copy of the Makefile and specs, in run_dir/plan/: a run stays
    pinned to the release it started in, whatever pushes happen meanwhile.

    `task_env` (default: flank.yml's `env:`) is what every task gets on top of the
    environment make passes on (see spec_environment); it may hold the runner's own
    environment, so the specs are the owner's alone (0600)."""
    from flank_ops.task.launcher import task_launcher_argv

    plan = Path(run_dir) / PLAN_DIR
    specs_dir = plan / f"{pipeline.name}.tasks"  # one file (_write_specs)
    if task_env is None:
        _write_specs(
            specs_dir, pipeline, release_dir, declared_env(config.env), slurm_options=config.slurm, cells_run=cells_run
        )
    else:
        _write_specs(
            specs_dir, pipeline, release_dir, task_env, mode=0o600, slurm_options=config.slurm, cells_run=cells_run
        )
    makefile = plan / f"{pipeline.name}.mk"
    text = render_makefile(
        pipeline,
        makefile_path=makefile,
        specs_dir=specs_dir,
        default_run_dir=Path(run_dir),
        launcher_argv=task_launcher_argv(),
        release_dir=release_dir,
        commit=commit,
        checked=checked,
    )
    atomic_write_text(makefile, text, mode=0o644)
    return makefile


# --- make's own environment -------------------------------------------------------

# What make (and the launcher it starts) needs from the runner's environment; the locale's
# LC_* too. PYTHONPATH: the Python launcher must import this flank_ops.
MAKE_ENV_NAMES = frozenset(
    ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "PYTHONPATH")
)


def make_environment(secrets: dict[str, str], source: dict[str, str] | None = None) -> dict[str, str]:
    """The environment `flank run` starts make with: the few variables make needs from
    `source` (default: this process's), and the secrets with their names, which the
    launcher must read from its own environment to mask them. Never flank.yml's env:."""
    source = dict(os.environ) if source is None else source
    env = {
        k: v
        for k, v in source.items()
        if (k in MAKE_ENV_NAMES or k.startswith("LC_")) and k not in MAKE_CONTROL_VARIABLES
    }
    env.update((k, v) for k, v in secrets.items() if k not in MAKE_CONTROL_VARIABLES)
    env["FLANK_SECRET_NAMES"] = ",".join(sorted(secrets))
    return env


def spec_environment(
    task_env: dict[str, str], make_env: dict[str, str], source: dict[str, str] | None = None
) -> dict[str, str]:
    """What the spec files must add for each task to see `task_env`: every variable make's
    environment lacks (or has with another value). make's own control variables that
    flank itself was started with (say, by a make recipe) stay out, as the launcher
    drops them; set in flank.yml's env:, they reach the task."""
    source = dict(os.environ) if source is None else source
    return {
        k: v
        for k, v in task_env.items()
        if make_env.get(k) != v and not (k in MAKE_CONTROL_VARIABLES and source.get(k) == v)
    }


def make_executable() -> str:
    """The path of make (runs need it; a deploy and `flank doctor` warn without it)."""
    found = shutil.which("make")
    if found is None:
        raise UserError("GNU make is not installed on this machine", "install it: sudo apt-get install make")
    return found


def make_command(makefile: Path, run_dir: Path, jobs: int, targets: list[str]) -> list[str]:
    """`make -k -j N -f MAKEFILE RUN_DIR=... [targets]` (no targets: every task)."""
    argv = [make_executable(), "-k", "-j", str(max(1, int(jobs))), "-f", str(makefile), f"RUN_DIR={make_word(run_dir)}"]
    if targets:
        argv.append("--")  # a task may be called "-k"
        argv.extend(make_target(t) for t in targets)
    return argv
