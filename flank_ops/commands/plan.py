"""flank plan PROJECT PIPELINE | flank plan --local PIPELINE

What a run would do now with each task, and why — without running anything (issue 12).
Same decisions as `flank run` (run/plan.py); a task after one that runs is decided only
when that one has run (early cut-off), and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flank_ops import jsonout
from flank_ops.commands.target import add_param_option, add_target_arguments, parse_target
from flank_ops.config.model import Config, Pipeline
from flank_ops.config.params import param_env, parse_params, split_assignments
from flank_ops.errors import UserError
from flank_ops.incremental import plan
from flank_ops.jsonout import FLAG_HELP
from flank_ops.paths import ProjectPaths
from flank_ops.run import matrix_from, runner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser, local_help="plan a run of the current working copy")
    parser.add_argument("--json", action="store_true", help=FLAG_HELP)
    parser.add_argument("--force", action="store_true", help="as `flank run --force` would")
    parser.add_argument(
        "--force-task",
        action="append",
        default=[],
        metavar="T",
        help="as `flank run --force-task T` would (repeatable)",
    )
    add_param_option(parser, "as `flank run -p` would")


def run(args: argparse.Namespace) -> int:

    target = parse_target(args, "plan")
    deployed = runner.resolve_deployed(target.project, target.local_dir)
    pipeline = runner.find_pipeline(deployed.config, target.pipeline, deployed.paths)
    selected = pipeline.topological_order()
    forced = plan.forced_tasks(
        pipeline,
        selected,
        force=args.force,
        from_task=None,
        force_tasks=runner.check_force_tasks(pipeline, args.force_task),
    )
    params_env = param_env(parse_params(pipeline, split_assignments(args.params)))  # issue 23
    decisions = plan.decide(
        deployed.paths, pipeline, deployed.config, deployed.release_dir, selected, forced, params_env
    )
    decisions = _with_known_cells(
        deployed.paths, pipeline, deployed.config, deployed.release_dir, decisions, forced, params_env
    )
    runs = sum(1 for d in decisions.values() if d.action == plan.RUN)
    maybe = sum(1 for d in decisions.values() if d.action == plan.CHECK)
    if args.json:
        tasks = [{"task": d.task, "decision": d.action, "reason": d.reason} for d in decisions.values()]
        project_name = deployed.paths.name
        jsonout.emit("plan", project=project_name, pipeline=pipeline.name, would_run=runs, maybe=maybe, tasks=tasks)
        return 0
    if runs == 0 and maybe == 0:
        print(f"{pipeline.name}: nothing to run: all {len(decisions)} tasks are up to date")
    else:
        more = f" (+{maybe} if upstream outputs change)" if maybe else ""
        print(f"{pipeline.name}: {runs} of {len(decisions)} tasks would run{more}")
    width = plan.name_width(decisions)
    for decision in decisions.values():
        print(plan.describe(decision, width))
    return 0


def _with_known_cells(
    paths: ProjectPaths,
    pipeline: Pipeline,
    config: Config,
    release_dir: Path,
    decisions: dict[str, plan.Decision],
    forced: frozenset[str],
    params_env: dict[str, str],
) -> dict[str, plan.Decision]:
    """A matrix_from: task whose file's writers are all up to date would read the file as it is
    now: its cells are decided here, one line each, as the run will decide them. Otherwise (a
    writer runs, the file is missing or bad) it stays 'cells from FILE, known after ... runs'."""
    out: dict[str, plan.Decision] = {}
    for name, decision in decisions.items():
        task = pipeline.tasks[name]
        if not task.matrix_from or any(decisions[n].action != plan.UP_TO_DATE for n in task.needs if n in decisions):
            out[name] = decision
            continue
        try:
            expanded, made, _ = matrix_from.expanded_pipeline(pipeline, task, release_dir)
        except UserError:
            out[name] = decision  # the run says what is wrong with the file, in the task's log
            continue
        names = [t.name for t in made]
        out.update(
            plan.decide(
                paths,
                expanded,
                config,
                release_dir,
                names,
                frozenset(names) if name in forced else frozenset(),
                params_env,
            )
        )
    return out
