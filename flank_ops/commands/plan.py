"""flank plan PROJECT PIPELINE | flank plan --local PIPELINE

What a run would do now with each task, and why — without running anything (issue 12).
Same decisions as `flank run` (run/plan.py); a task after one that runs is decided only
when that one has run (early cut-off), and says so.
"""

from __future__ import annotations

import argparse

from flank_ops import jsonout
from flank_ops.commands.target import add_param_option, add_target_arguments, parse_target
from flank_ops.config.params import param_env, parse_params, split_assignments
from flank_ops.incremental import plan
from flank_ops.jsonout import FLAG_HELP
from flank_ops.run import runner


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
    for decision in decisions.values():
        print(plan.describe(decision))
    return 0
