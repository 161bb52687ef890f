"""post-receive: deploy the deploy branch's tip, then start the runs the push asked for.

Order matters: the release is built completely (checkout, persist: links, then
`setup:`'s build linked: made by pre-receive, reused, or made here by `flank deploy` —
deploy/setup.py) and `current` switched atomically before anything reads it; steps
after the switch (Makefiles, crontab, site) may fail and are reported, but the
deploy stands. Deploys of one project are
serialized with a lock. A push whose commit a newer push replaced before its
deploy began records itself as superseded and leaves the deploy to the newer
push's own hook, so racing pushes end with the newest commit deployed and each
push is one line in deploys.jsonl. While it holds the lock a deploy marks its
commit (git/deploy_state.py), so one killed midway shows in `flank status`, and
`flank deploy PROJECT [SHA]` (deploy_by_hand) redoes it through this same code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from flank_ops.config.model import Config
from flank_ops.deploy.push_output import say
from flank_ops.errors import UserError
from flank_ops.fileio import atomic_symlink, atomic_write_text, locked
from flank_ops.git import release_config
from flank_ops.git.gitcmd import commit_info
from flank_ops.git.push_check import take_validated
from flank_ops.git.releases import clean_leftovers, clean_stale_validated, make_release, prune_releases
from flank_ops.paths import ProjectPaths
from flank_ops.run.in_use import releases_in_use
from flank_ops.store.deploy_log import VIA_COMMAND, VIA_PUSH, deploy_entry, record_deploy
from flank_ops.store.model import RunTrigger

if TYPE_CHECKING:
    from flank_ops.deploy.setup import SetupFailed


# Steps a deploy leaves for after the push has its answer (deploy()'s `later`).
Later = list[Callable[[], None]]


class Deployed(NamedTuple):
    sha: str
    config: Config


def deploy_and_start(
    paths: ProjectPaths, branch: str, pushed_sha: str, push_options: list[str], later: Later | None = None
) -> int:
    """The whole post-receive for a push to the deploy branch. Returns the hook's exit code.
    later: see deploy()."""
    from flank_ops.deploy.setup import split_setup_option
    from flank_ops.store.deploy_state import deploy_marked

    try:
        setup_option, push_options = split_setup_option(push_options)
    except UserError:  # pre-receive refused such a push; keep going without the option
        setup_option = None
    with deploy_lock(paths), deploy_marked(paths, pushed_sha):
        deployed = deploy(paths, branch, pushed_sha, setup_option=setup_option, later=later)
    if deployed is None:
        return 1
    # Outside the lock: starting runs must never hold up another push.
    start_runs(paths, deployed.config, push_options)
    return 0


def warm_up(config: Config | None = None) -> None:
    """Import what a deploy will, ahead of time (with `config`: what deploying it needs besides): the
    deploy child of pre-receive does this while pre-receive checks the push and git moves the branch
    (deploy/hooks.py), so the push does not wait for these imports afterwards."""
    if config is not None:
        if any(p.schedule for p in config.pipelines.values()):  # the push says when each runs next
            import croniter  # noqa: F401

            from flank_ops.schedule import next_runs  # noqa: F401
        return
    import encodings.idna  # noqa: F401
    import getpass  # noqa: F401
    import glob  # noqa: F401
    import urllib.parse  # noqa: F401

    from flank_ops import settings  # noqa: F401
    from flank_ops.config import params  # noqa: F401
    from flank_ops.cost import setup_disk  # noqa: F401
    from flank_ops.deploy import persist_overlay, setup  # noqa: F401
    from flank_ops.executors import resources, vm_check  # noqa: F401
    from flank_ops.executors import settings as executor_settings  # noqa: F401
    from flank_ops.git import bare_repo  # noqa: F401
    from flank_ops.incremental import fingerprints  # noqa: F401
    from flank_ops.notify import destinations  # noqa: F401
    from flank_ops.remote import address  # noqa: F401
    from flank_ops.run import launch, makefile  # noqa: F401
    from flank_ops.schedule import crontab, zones  # noqa: F401
    from flank_ops.site import layout  # noqa: F401
    from flank_ops.store import deploy_state  # noqa: F401
    from flank_ops.task import checked_task, launcher  # noqa: F401


@contextlib.contextmanager
def deploy_lock(paths: ProjectPaths) -> Iterator[None]:
    """The deploy lock; a push that has to wait for it (another deploy's setup may take minutes) says so."""
    with locked(paths.lock_file("deploy"), blocking=False) as held:
        if held:
            yield
            return
    try:  # the deploy holding it marked its commit there (deploy_state.deploy_marked)
        other = paths.lock_file("deploy").read_text(encoding="ascii", errors="replace").strip()[:7]
    except OSError:
        other = ""
    say(f"another deploy{f' ({other})' if other else ''} is in progress; this push waits for it")
    with locked(paths.lock_file("deploy")):
        yield


def deploy(
    paths: ProjectPaths,
    branch: str,
    pushed_sha: str,
    *,
    via: str = VIA_PUSH,
    setup_option: str | None = None,
    later: Later | None = None,
) -> Deployed | None:
    """Check out, link, set up (issue 13), switch `current`, regenerate, record. Call with the deploy
    lock held.

    later: what nobody waits for (the site's redraw, removing pruned releases) is added there, for
    the caller to do once the push has its answer (deploy/hooks.py); None: started or done here.

    via=VIA_COMMAND (`flank deploy`): deploy `pushed_sha` itself, again, whatever the branch says.
    setup_option: -o setup=skip|force."""
    git_dir = paths.bare_repo
    ref = f"refs/heads/{branch}"
    by_hand = via != VIA_PUSH
    # The branch's tip now, not the pushed sha: a newer push may have moved it while we waited.
    commit = commit_info(git_dir, pushed_sha if by_hand else ref)
    sha = commit["sha"] or pushed_sha
    previous = paths.current_sha()
    validated = take_validated(paths, pushed_sha)
    if sha != pushed_sha:
        record_superseded(paths, branch, pushed_sha, sha)
        return None
    if sha == previous and paths.release_dir(sha).is_dir() and not by_hand:
        return deployed_already(paths, ref, commit, validated)
    clean_leftovers(paths)
    clean_stale_validated(paths)

    from flank_ops.deploy.setup import SetupFailed, setup_release

    setup: dict[str, Any] | None = None
    try:
        release, warnings, config = make_release(
            paths, sha, validated, lambda _release: release_config.load_release_config(paths, sha)
        )
        setup = setup_release(paths, sha, release, config, setup_option, previous, by_hand=by_hand)
        if not by_hand and setup is not None and setup.get("status") == "ran":
            tip = branch_tip_now(paths, branch)
            if tip is not None and tip != sha:  # a newer push came in while setup ran: it deploys
                record_superseded(paths, branch, sha, tip, setup=setup)
                return None
        synced = sync_persisted(paths, release, config)
        # Runs read this copy, so it is in place before `current` points at the release.
        release_config.store_release_config(paths, sha, config)
        pause_for_tests("before-switch")
        atomic_symlink(os.path.relpath(release, paths.current.parent), paths.current)
    except SetupFailed as exc:
        setup_failed(paths, ref, commit, previous, exc, via)
        return None
    except (OSError, UserError) as exc:
        reason = failure_text(exc)
        say(f"deploy of {commit['short']} failed: {reason}")
        say(f"still deployed: {previous[:7] if previous else 'nothing yet'} (the push itself was stored in git)")
        try:
            record_deploy(paths, deploy_entry("failed", ref, commit, errors=[reason], via=via, setup=setup))
        except OSError:
            pass  # the disk that failed the deploy may refuse this too; the output above says it all
        return None

    pause_for_tests("after-switch")
    warnings += regenerate(paths, config, release)
    warnings += executor_warnings(paths, config)  # issue 14
    warnings += notify_warnings(paths, config)  # issue 19 bug 8
    from flank_ops.run.makefile import make_executable

    try:
        make_executable()
    except UserError as exc:
        warnings.append(f"{exc.message}, so runs will fail; {exc.hint}")
    try:
        record_deploy(
            paths,
            deploy_entry(
                "accepted", ref, commit, warnings=warnings, pipelines=list(config.pipelines), via=via, setup=setup
            ),
        )
    except OSError as exc:
        warnings.append(f"deploy not recorded in {paths.deploys_log}: {failure_text(exc)}")
    # After the record, so the site's Deploys page shows this push.
    warnings += refresh_site(paths, via, later)

    say(f'deployed {commit["short"]} "{commit["message"]}"')
    for line in synced:
        say(line)
    for line in schedule_lines(config):
        say(line)
    for warning in warnings:
        say(f"warning: {warning}")
    site_line = status_site_line(paths)
    for line in (site_line or "").splitlines():
        say(line)
    try:
        prune_releases(paths, releases_in_use(paths), later=later)
        from flank_ops.deploy.setup import prune_builds, pruned_line

        removed = prune_builds(paths)
        if removed:
            say(pruned_line(removed))
    except OSError as exc:
        say(f"warning: old releases not pruned: {failure_text(exc)}")
    return Deployed(sha, config)


def branch_tip_now(paths: ProjectPaths, branch: str) -> str | None:
    from flank_ops.git.bare_repo import branch_tip

    return branch_tip(paths.bare_repo, branch)


def setup_failed(
    paths: ProjectPaths, ref: str, commit: dict[str, str], previous: str | None, exc: SetupFailed, via: str
) -> None:
    """issue 13: setup failed or timed out: nothing switched; say so, and what the branch did."""
    short = commit["short"]
    stays = f"{previous[:7]} stays current" if previous else "nothing is deployed yet"
    say(f"deploy failed: {exc.reason} — {short} is not deployed, {stays}")
    if via == VIA_PUSH:
        say(
            f"the branch moved to {short} (git keeps the push) but the deploy did not: fix the setup and push "
            f"again, or retry this commit by hand on the VM (e.g. after a network blip): "
            f"flank deploy {paths.name} {short}"
        )
    try:
        record_deploy(
            paths,
            deploy_entry("failed", ref, commit, errors=[exc.reason], via=via, setup=exc.entry),
        )
    except OSError:
        return
    for warning in refresh_site(paths, via):
        say(f"warning: {warning}")


def deploy_by_hand(paths: ProjectPaths, rev: str | None = None) -> int:
    """`flank deploy PROJECT [SHA]`: what post-receive does for a push (validate, check out, link,
    switch, Makefiles, crontab, site, deploys.jsonl), for commit `rev` (default: the deploy
    branch's tip). Starts no runs. Returns the exit code."""
    from flank_ops.git.bare_repo import deploy_branch, resolve_commit
    from flank_ops.git.push_check import check_commit, save_validated
    from flank_ops.store.deploy_state import deploy_gap, deploy_marked

    branch = deploy_branch(paths.bare_repo)
    sha = resolve_commit(paths.bare_repo, rev or f"refs/heads/{branch}")
    if sha is None:
        if rev:
            raise UserError(
                f"no commit {rev!r} in {paths.bare_repo}",
                f"give a commit pushed to the project, or nothing for the tip of {branch!r}",
            )
        raise UserError(f"nothing pushed to {branch!r} yet, so nothing to deploy", "push first: git push flank main")
    gap = deploy_gap(paths)
    if gap is not None:
        say(gap.message)
    tip = resolve_commit(paths.bare_repo, f"refs/heads/{branch}")
    where = f"the tip of {branch}" if sha == tip else f"{branch} is at {(tip or 'nothing')[:7]}"
    say(f"deploying {sha[:7]} by hand ({where})")
    errors, config = check_commit(paths.bare_repo, sha)
    if errors:
        say(f"{sha[:7]} cannot be deployed, {len(errors)} problem{'s' if len(errors) != 1 else ''}; nothing changed:")
        for error in errors:
            for line in error.splitlines():
                print(f"  {line}", file=sys.stderr)
        return 1
    if config is not None:
        say(f"flank.yml OK — {describe_config(config)}")
        with contextlib.suppress(OSError):
            save_validated(paths, sha, config)
    with locked(paths.lock_file("deploy")), deploy_marked(paths, sha):
        deployed = deploy(paths, branch, sha, via=VIA_COMMAND)
    if deployed is None:
        return 1
    on_push = [name for name, p in deployed.config.pipelines.items() if p.on_push]
    if on_push:
        say(
            f"runs are not started by flank deploy (on_push: {', '.join(on_push)}); "
            f"start one with: flank run {paths.name} {on_push[0]}"
        )
    return 0


def sync_persisted(paths: ProjectPaths, release: Path, config: Config) -> list[str]:
    """issue 11: tracked files under persisted folders into persist/ (deploy/persist_overlay.py)."""
    from flank_ops.deploy.persist_overlay import sync_tracked

    return sync_tracked(paths, release, config.persist)


def describe_config(config: Config) -> str:
    from flank_ops.config.load import describe

    return describe(config)


def pause_for_tests(point: str) -> None:
    """Tests only: FLANK_TEST_DEPLOY_PAUSE=POINT:PIDFILE makes the deploy write its pid to PIDFILE
    and block at POINT (before-switch, after-switch), so a test can kill -9 it right there."""
    point_wanted, _, pid_file = os.environ.get("FLANK_TEST_DEPLOY_PAUSE", "").partition(":")
    if point_wanted != point or not pid_file:
        return
    import signal

    Path(pid_file).write_text(str(os.getpid()), encoding="utf-8")
    while True:
        signal.pause()


def record_superseded(
    paths: ProjectPaths, branch: str, pushed_sha: str, tip: str, setup: dict[str, Any] | None = None
) -> None:
    """A newer push moved the branch before this one's deploy began: that push's own hook deploys
    the tip; this push gets its one deploys.jsonl line, and the Pushes page shows it."""
    say(
        f"a newer push moved {branch} to {tip[:7]} before {pushed_sha[:7]} was deployed; that push deploys it "
        "(nothing started by this push)"
    )
    try:
        commit = commit_info(paths.bare_repo, pushed_sha)
    except UserError:
        commit = {"sha": pushed_sha, "short": pushed_sha[:7]}
    try:
        record_deploy(paths, deploy_entry("superseded", f"refs/heads/{branch}", commit, superseded_by=tip, setup=setup))
    except OSError as exc:
        say(f"warning: push not recorded in {paths.deploys_log}: {failure_text(exc)}")
        return
    for warning in refresh_site(paths):
        say(f"warning: {warning}")


def deployed_already(
    paths: ProjectPaths, ref: str, commit: dict[str, str], validated: Config | None
) -> Deployed | None:
    """The pushed commit is the deployed one (the branch went away from it and back): nothing to
    redo, but the push still gets its deploys.jsonl line."""
    say(f"{commit['short']} is deployed already")
    try:
        config = validated or release_config.load_release_config(paths, commit["sha"])
    except UserError as exc:
        say(f"warning: {failure_text(exc)}")
        return None
    try:
        record_deploy(
            paths,
            deploy_entry(
                "accepted",
                ref,
                commit,
                warnings=[f"{commit['short']} was deployed already"],
                pipelines=list(config.pipelines),
            ),
        )
    except OSError as exc:
        say(f"warning: push not recorded in {paths.deploys_log}: {failure_text(exc)}")
    for warning in refresh_site(paths):
        say(f"warning: {warning}")
    return Deployed(commit["sha"], config)


def regenerate(paths: ProjectPaths, config: Config, release: Path) -> list[str]:
    """Makefiles and crontab: each may fail on its own; returns what the user should know."""
    warnings: list[str] = []

    def write_makefiles() -> None:
        from flank_ops.run.makefile import write_pipeline_files

        write_pipeline_files(paths, config, release)

    def install_crontab() -> None:
        from flank_ops.schedule.crontab import install_schedule

        warnings.extend(install_schedule(paths, config))

    warnings += attempt("pipeline Makefiles not written (runs will fail until the next deploy)", write_makefiles)
    warnings += attempt("schedule not installed", install_crontab)
    return warnings


def executor_warnings(paths: ProjectPaths, config: Config) -> list[str]:
    """issue 14: executors flank.yml names that this VM lacks, tasks too big for it."""
    from flank_ops.executors.vm_check import config_warnings

    try:
        return config_warnings(paths.home, paths.name, config)
    except UserError as exc:  # an unreadable flank.toml: said once, the deploy stands
        return [exc.message]


def notify_warnings(paths: ProjectPaths, config: Config) -> list[str]:
    """`notify:` with nowhere to send (notify/destinations.py): said by the push that makes it so, not
    again by every push after it; it changes with flank.yml's `notify:` and flank.toml's [notify.*],
    and then it is said again. `flank validate` and `flank doctor` say it whenever they are asked."""
    from flank_ops.notify.destinations import nowhere_to_send
    from flank_ops.settings import settings_for

    try:
        warning = nowhere_to_send(config, settings_for(paths.home, paths.name), str(paths.home.settings_file))
    except UserError:
        return []  # an unreadable flank.toml: executor_warnings said it
    said = paths.notify_warning_said
    try:
        if warning is None:
            said.unlink(missing_ok=True)
        elif said.is_file() and said.read_text(encoding="utf-8") == warning:
            return []
        else:
            atomic_write_text(said, warning)
    except OSError:
        pass  # not remembered: the next push says it again
    return [warning] if warning else []


def refresh_site(paths: ProjectPaths, via: str = VIA_PUSH, later: Later | None = None) -> list[str]:
    """Redraw the pages a deploy changes: for a push, after the push returned (issue 10: a push that
    feels instant) — by the process that deployed (`later`), else in a detached one; by hand
    (`flank deploy`), here."""
    if via == VIA_PUSH and later is not None:
        later.append(lambda: rebuild_site_after_push(paths))
        return []
    step = rebuild_site if via != VIA_PUSH else start_site_rebuild
    return attempt("status site not rebuilt (run: flank site)", lambda: step(paths))


def rebuild_site_after_push(paths: ProjectPaths) -> None:
    """The pages a push changes, redrawn after the push returned. One at a time; the last to start
    reads the newest state."""
    with locked(paths.lock_file("site-after-push")):
        rebuild_site(paths)


def start_site_rebuild(paths: ProjectPaths) -> None:
    """`flank hook site PROJECT`, detached (see deploy/hooks.py: site_after_push)."""
    from flank_ops.run.launch import spawn_detached

    spawn_detached(
        [sys.executable, "-m", "flank_ops", "hook", "site", paths.name],
        cwd=paths.home.root if paths.home.root.is_dir() else None,
    )


def rebuild_site(paths: ProjectPaths) -> None:
    from flank_ops.site.build import after_deploy

    after_deploy(paths.home, paths.name)


def attempt(what: str, step: Callable[[], None]) -> list[str]:
    """Run one step after the switch; its failure becomes a warning (the deploy stands)."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - a later step failing must not undo the deploy
        return [f"{what}: {failure_text(exc)}"]
    return []


def failure_text(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
    if isinstance(exc, OSError):
        from flank_ops.error_handler import _os_error_message

        known = _os_error_message(exc)
        if known is not None:
            return f"{known.message} ({known.hint})"
        return f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"
    return f"{type(exc).__name__}: {exc}"


def schedule_lines(config: Config) -> list[str]:
    """One line per pipeline: its schedule and next run, like `nightly  0 2 * * * (Europe/London) — next run ...`."""
    width = max((len(name) for name in config.pipelines), default=0)
    lines = []
    for name, pipeline in config.pipelines.items():
        if pipeline.schedule:
            text = ", ".join(pipeline.schedule)
            if pipeline.timezone:
                text += f" ({pipeline.timezone})"
            text += next_run_text(pipeline)
        else:
            text = "not scheduled"
        if pipeline.on_push:
            text += "; runs on every push"
        lines.append(f"{name.ljust(width)}  {text}")
    return lines


def next_run_text(pipeline: Any) -> str:
    try:
        from flank_ops.schedule.next_runs import next_runs

        upcoming = next_runs(pipeline, count=1)
    except Exception as exc:  # noqa: BLE001 - a display detail must not fail the push
        return f" — next run unknown ({type(exc).__name__}: {exc})"
    if not upcoming:
        return ""
    from flank_ops.humanize import MEDIUM, clock

    return " — next run " + clock(upcoming[0], pipeline.timezone, MEDIUM)


def status_site_line(paths: ProjectPaths) -> str | None:
    """Where to see the site: its URL when flank.toml has site_url; else how to open it (lines)."""
    try:
        from flank_ops.settings import settings_for, site_url
        from flank_ops.site.layout import project_url

        settings = settings_for(paths.home, paths.name)
        url = project_url(site_url(settings), paths.name)
    except UserError as exc:
        return f"warning: {failure_text(exc)}"
    if settings.get("site_url"):
        return f"status site {url}"
    return site_access_lines(paths, url)


def site_access_lines(paths: ProjectPaths, url: str) -> str:
    """Without site_url, 127.0.0.1 is nobody's address from the pusher's laptop: say how to open it."""
    from urllib.parse import urlsplit

    from flank_ops.remote.address import vm_address
    from flank_ops.settings import settings_for
    from flank_ops.store.deploy_log import pusher

    port = urlsplit(url).port or 80
    # The VM as the pusher reached it (SSH_CONNECTION's host and port), unless flank.toml's [ssh] says
    try:
        address = vm_address(settings_for(paths.home, paths.name), pusher() or "you")
    except UserError:  # a wrong [ssh] table: the hint without it (doctor and `flank init` say what is wrong)
        address = vm_address({}, pusher() or "you")
    tunnel = address.tunnel(port)
    return (
        f"status site: run `flank serve` on the VM (or set site_url in {paths.home.settings_file}), then\n"
        f"  from your laptop: {tunnel} and open {url}"
    )


def requested_runs(push_options: list[str]) -> tuple[list[str], list[str]]:
    """Pipelines named by `-o run=NAME` (comma lists allowed), and the options flank ignored."""
    names: list[str] = []
    ignored: list[str] = []
    for option in push_options:
        key, sep, value = option.partition("=")
        if key.strip() == "run" and sep:
            names += [n.strip() for n in value.split(",") if n.strip()]
        else:
            ignored.append(option)
    return names, ignored


def start_runs(paths: ProjectPaths, config: Config, push_options: list[str]) -> None:
    requested, ignored = requested_runs(push_options)
    for option in ignored:
        say(f"ignored push option {option!r} (flank knows: -o run=PIPELINE, -o setup=skip|force)")
    to_start = [name for name, p in config.pipelines.items() if p.on_push]
    for name in requested:
        if name not in config.pipelines:
            known = ", ".join(config.pipelines) or "none"
            say(f"-o run={name}: no pipeline {name!r} in flank.yml (pipelines: {known}); nothing started")
        elif name not in to_start:
            to_start.append(name)
    if not to_start:
        return
    from flank_ops.run.launch import start_detached_reporting

    for name in to_start:
        try:
            # Waits only until the run has its id (before any overlap wait), to say which run it is.
            run_id = start_detached_reporting(
                paths.name,
                name,
                ["--trigger", RunTrigger.PUSH],
                cwd=paths.home.root if paths.home.root.is_dir() else None,
            )
        except Exception as exc:  # noqa: BLE001 - the deploy is done; say why the run is not
            say(f"warning: {name} not started: {failure_text(exc)}")
            continue
        if run_id is None:
            say(f"warning: {name} did not start (run it by hand to see why: flank run {paths.name} {name})")
        else:
            say(f"started {name} #{run_id} — {_run_page(paths, name, run_id)}")


def _run_page(paths: ProjectPaths, pipeline: str, run_id: int) -> str:
    from flank_ops.settings import site_url
    from flank_ops.site.layout import run_page_url, run_url

    return run_page_url(paths.home, paths.name, pipeline, run_id) or run_url(site_url({}), paths.name, pipeline, run_id)
