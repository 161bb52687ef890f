"""`flank hook pre-receive|post-receive`: what the shims in NAME.git/hooks/ run.

This is on the path of every push, so module-level imports stay minimal; the
heavy parts (validator, Makefiles, crontab, site) load only when needed.

The project is found from the repo the hook runs in ($FLANK_HOME/NAME.git),
not from the environment: an ssh push does not carry FLANK_HOME.

pre-receive also runs `setup:` when the pushed commit needs a new build (deploy/setup.py),
so a failed setup refuses the push. One Python start-up per push: pre-receive forks, before it
checks the push, the child that will deploy (start_deploy_child: it loads the deploy's modules
while pre-receive checks and git moves the branch); told the push is accepted, it holds the
receive lock until git has moved the branch and then does the post-receive itself (the deploy:
deploy/deploy.py), its output copied to the push by the post-receive shim through a named pipe.
bench/push.py --plain-post-receive measures
what that saves against a post-receive that deploys by itself: ~220 ms a push on a 2-core VM
at load 12. The shim's copy loop is the price: a logic-free shim whose Python copies the pipe
instead saved ~20 ms (noise) at load 14, and delayed each deploy by a Python start-up. What
nobody waits for (the site's redraw, removing pruned releases) that child does after closing
the pipe, once the push has its answer; a refusal's redraw is a detached `flank hook site
PROJECT`. A post-receive shim from an older `flank init` still deploys by itself.

issue 22, what else keeps a push close to a plain git push (bench/push.py --ssh): a flank.yml
the push leaves unchanged is not parsed again (the deployed release's validated Config, checked
against the pushed files: config/load.py still_valid), one `git cat-file --batch` reads the
pushed tree and flank.yml, and the hook exits without the interpreter's teardown (main.cli, as every
command does).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from flank_ops.deploy.push_output import say
from flank_ops.errors import UserError
from flank_ops.paths import Home, ProjectPaths

if TYPE_CHECKING:
    from flank_ops.config.model import Config
    from flank_ops.deploy.deploy import Later
    from flank_ops.git.push_check import RefUpdate

USAGE = "usage: flank hook pre-receive|post-receive (run by git, installed by flank init)"


def hook_main(argv: list[str]) -> int:
    if argv[:1] == ["site"] and len(argv) == 2:
        return site_after_push(argv[1])
    if not argv or argv[0] not in ("pre-receive", "post-receive"):
        raise UserError(USAGE)
    git_dir = Path(os.environ.get("GIT_DIR") or ".").resolve()
    paths = project_paths(git_dir)
    # Everything the hooks start (runs, crontab lines) must find this same home.
    os.environ["FLANK_HOME"] = str(paths.home.root)
    stdin_text = sys.stdin.read()
    if argv[0] == "pre-receive":
        return pre_receive(paths, stdin_text)
    return post_receive(paths, stdin_text)


def site_after_push(project: str) -> int:
    """`flank hook site PROJECT`, started detached by a push's hooks: the pages a push changes,
    redrawn after the push returned."""
    from flank_ops.deploy.deploy import rebuild_site_after_push

    rebuild_site_after_push(Home().project(project))
    return 0


def project_paths(git_dir: Path) -> ProjectPaths:
    if not git_dir.name.endswith(".git"):
        raise UserError(
            f"{git_dir} is not a flank project repo (expected $FLANK_HOME/NAME.git)",
            "create projects with: flank init NAME",
        )
    return Home(git_dir.parent).project(git_dir.name[: -len(".git")])


def push_options() -> list[str]:
    try:
        count = int(os.environ.get("GIT_PUSH_OPTION_COUNT") or 0)
    except ValueError:
        count = 0
    return [os.environ.get(f"GIT_PUSH_OPTION_{i}", "") for i in range(count)]


def pre_receive(paths: ProjectPaths, stdin_text: str) -> int:
    from flank_ops.git.bare_repo import deploy_branch

    branch = deploy_branch(paths.bare_repo)
    # A pipe named after this receive-pack is a leftover (a deploy child killed before removing
    # it, the pid reused since): post-receive would wait on it forever.
    with contextlib.suppress(OSError):
        os.unlink(paths.bare_repo / POST_RECEIVE_PIPE_MARK.replace("$PPID", str(os.getppid())))
    receive_lock = open_receive_lock(paths)
    deploy_child = None
    batch = None
    updates = updates_branch(stdin_text, branch)
    if updates:  # git's start-up overlaps the imports below
        with contextlib.suppress(OSError, UserError):
            from flank_ops.git.gitcmd import cat_file_batch

            batch = cat_file_batch(paths.bare_repo)
    from flank_ops.git import release_config, trees  # noqa: F401 - before the fork: the deploy child needs them too
    from flank_ops.git.push_check import check_push, parse_updates

    if updates:
        deploy_child = start_deploy_child(paths, branch, stdin_text, receive_lock)
    verdict = check_push(
        paths.bare_repo, branch, parse_updates(stdin_text), lambda data: validated_before(paths, data), batch
    )
    if verdict.deploy is not None:
        problem = bad_push_option()
        if problem:
            verdict.errors.append(problem)
    if verdict.deploy is not None and not verdict.errors:
        problem = unwritable_state(paths)
        if problem:
            verdict.errors.append(problem)
    claim = None
    setup_entry: dict[str, Any] | None = None
    if verdict.deploy is not None and not verdict.errors:
        claim, problem = claim_deploy_branch(paths, branch, verdict.deploy, receive_lock)
        if problem:
            verdict.errors.append(problem)
    if not verdict.errors and verdict.deploy is not None and verdict.config is not None:
        from flank_ops.config.load import describe

        say(f"flank.yml OK — {describe(verdict.config)}")
        problem, setup_entry = setup_before_push(paths, branch, verdict.deploy, verdict.config)
        if problem:
            verdict.errors.append(problem)
    if not verdict.errors:
        if verdict.deploy is not None and verdict.config is not None:
            validated = Validated(verdict.deploy.new, verdict.config, verdict.flank_yml)
            if claim is not None:
                if not hand_to_deploy_child(deploy_child, paths, validated, verdict.deploy, claim):
                    hold_claim_until_ref_moves(claim, paths, branch, verdict.deploy, stdin_text, validated)
            else:  # post-receive deploys by itself (deploy/deploy.py take_validated)
                hand_over(paths, validated, in_memory=False)
        return 0
    if claim is not None:
        let_go(claim)  # the branch stays: the next push may take its turn
    noun = "problem" if len(verdict.errors) == 1 else "problems"
    say(f"push refused, {len(verdict.errors)} {noun}; nothing was deployed:")
    for error in verdict.errors:
        for line in _in_terminal(error).splitlines():
            print(f"  {line}", file=sys.stderr)
    record_rejection(paths, refused_update(verdict.deploy, parse_updates(stdin_text)), verdict.errors, setup_entry)
    return 1


def validated_before(paths: ProjectPaths, data: bytes) -> Config | None:
    """The deployed release's Config if its flank.yml is `data` (git/release_config.py)."""
    from flank_ops.git import release_config

    return release_config.validated_before(paths, data)


class Validated(NamedTuple):
    """What pre-receive validated for the deploy: the pushed commit, its Config and flank.yml's bytes."""

    sha: str
    config: Config
    flank_yml: bytes


def hand_over(paths: ProjectPaths, validated: Validated, in_memory: bool) -> None:
    """Hand the validated Config and bytes to the deploy (git/push_check.py save_validated): kept in
    memory when the deploy runs in this process (the child of pre-receive), else in files."""
    from flank_ops.git.push_check import save_validated

    try:
        save_validated(paths, validated.sha, validated.config, validated.flank_yml, in_memory=in_memory)
    except OSError:
        pass  # only a shortcut: the deploy validates again without it


def refused_update(deploy: RefUpdate | None, updates: list[RefUpdate]) -> RefUpdate | None:
    """The ref a refused push's one deploys.jsonl line is about: the deploy branch's update if
    the push has one (a deletion too), else the first ref pushed (refs/notes/flank, ...)."""
    from flank_ops.git.push_check import ZERO_SHA

    if deploy is not None:
        return deploy
    deletions = [u for u in updates if u.new == ZERO_SHA]
    candidates = deletions or updates
    return candidates[0] if candidates else None


def open_receive_lock(paths: ProjectPaths) -> int | None:
    """The receive lock's file, open (claim_deploy_branch takes it), or None when it cannot be
    opened (read-only home): then pushes do not take turns, git's own compare-and-swap still holds."""
    lock = paths.lock_file("receive")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None


def let_go(fd: int) -> None:
    """Release the receive lock `fd` holds, even while a child still has the descriptor too."""
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def claim_deploy_branch(
    paths: ProjectPaths, branch: str, update: RefUpdate, fd: int | None
) -> tuple[int | None, str | None]:
    """Take turns on the deploy branch, from here until git has moved it.

    git moves a ref only if it is still where the pusher saw it: of two pushes at once,
    both pass pre-receive and the loser gets git's bare "failed to update ref", recorded
    nowhere. So a push to the deploy branch holds the receive lock from here until its ref
    update is in (hold_claim_until_ref_moves); the next one then sees the branch moved and
    is refused here, saying why, with its line in deploys.jsonl.
    `fd`: open_receive_lock's. Returns (`fd`, None), `fd` locked, or (None, why the push is refused).
    """
    import fcntl

    from flank_ops.git.bare_repo import branch_tip
    from flank_ops.git.push_check import ZERO_SHA

    if fd is None:
        return None, None  # cannot take turns (read-only home): git's own compare-and-swap still holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another push's setup may take minutes (issue 28 item 3): say so
        say(f"another push to {branch!r} is on its way in (its setup may be running); this push waits for it")
        fcntl.flock(fd, fcntl.LOCK_EX)  # until the previous push's ref update is in
    tip = branch_tip(paths.bare_repo, branch)
    if (tip or ZERO_SHA) == update.old:
        return fd, None
    let_go(fd)
    return None, (
        f"{branch!r} moved to {(tip or 'nothing')[:7]} while this push was on its way (another push "
        f"came first)\n  fetch it, then push again: git pull flank {branch} && git push flank {branch}"
    )


def hold_claim_until_ref_moves(
    fd: int, paths: ProjectPaths, branch: str, update: RefUpdate, stdin_text: str, validated: Validated
) -> None:
    """Hand the receive lock to a child that keeps it until git has moved the branch (or the
    receive-pack that runs this hook is gone), then lets the next push in. The hook returns at once.

    One Python start-up per push (issue 10): when hooks/post-receive is the shim that reads
    a pipe (POST_RECEIVE_PIPE_MARK), the same child then does the whole post-receive — it has
    the validated config and flank's modules loaded already — and its output goes through the
    pipe named after receive-pack's pid, which post-receive copies to the push's terminal."""
    receive_pack = os.getppid()
    pipe = make_post_receive_pipe(paths, receive_pack)
    if pipe is None:  # post-receive deploys by itself: hand over before git moves the branch
        hand_over(paths, validated, in_memory=False)
    if os.fork() != 0:
        os.close(fd)  # the child holds the lock now
        return
    try:
        from flank_ops.run.launch import detach_this_child  # in the child: the push's hook returns without it

        detach_this_child(keep_fd=fd)  # git waits for the hook's output pipes to close: never hold them
        if pipe is None:
            wait_for_ref_update(paths, branch, update.old, receive_pack)
            return
        from flank_ops.deploy import deploy

        hand_over(paths, validated, in_memory=True)
        deploy.warm_up()
        deploy.warm_up(validated.config)
        deploy_in_this_process(fd, paths, branch, update, stdin_text, pipe, receive_pack)
    finally:
        os._exit(0)


POST_RECEIVE_PIPE_MARK = "flank-push-$PPID.fifo"  # hooks/post-receive copies this pipe when it exists


def updates_branch(stdin_text: str, branch: str) -> bool:
    """Whether the push (pre-receive's input) updates `branch`, at a glance (push_check parses it)."""
    deploy_ref = f"refs/heads/{branch}"
    return any(line.split()[-1:] == [deploy_ref] for line in stdin_text.splitlines())


def start_deploy_child(paths: ProjectPaths, branch: str, stdin_text: str, receive_lock: int | None) -> int | None:
    """issue 22: fork the child that will deploy (deploy_in_this_process) before pre-receive checks the
    push, so it loads the deploy's modules while this process checks and git moves the branch, rather
    than after, on the push's path. (Forked before pre-receive's own imports, it only imported them
    again: no sooner ready, measured.) It shares `receive_lock` (a lock this process takes on it is
    the child's too) and waits for hand_to_deploy_child's word on a pipe; told nothing (a refused
    push, a failed hook), it exits. Returns the pipe's end to write, or None: no child (post-receive
    deploys by itself, no lock, no fork)."""
    if receive_lock is None:
        return None
    try:
        if POST_RECEIVE_PIPE_MARK not in (paths.bare_repo / "hooks" / "post-receive").read_text(encoding="utf-8"):
            return None
        word, to_child = os.pipe()
        receive_pack = os.getppid()
        pid = os.fork()
    except (OSError, UnicodeDecodeError):
        return None
    if pid != 0:
        os.close(word)
        return to_child
    try:
        from flank_ops.run.launch import detach_this_child

        detach_this_child(receive_lock, word)  # git waits for the hook's output pipes to close: hold none
        deploy_when_told(word, receive_lock, paths, branch, stdin_text, receive_pack)
    finally:
        os._exit(0)


def hand_to_deploy_child(
    to_child: int | None, paths: ProjectPaths, validated: Validated, update: RefUpdate, claim: int
) -> bool:
    """Tell the deploy child (start_deploy_child) to deploy `validated`: it holds the receive lock from
    now on, and lets the next push in once git has moved the branch. False: it cannot
    (hold_claim_until_ref_moves instead)."""
    if to_child is None:
        return False
    import pickle

    told = False
    try:
        if make_post_receive_pipe(paths, os.getppid()) is not None:
            # flank.yml's bytes written (durably) here: the child is the one the push waits for
            hand_over(paths, validated, in_memory=True)
            payload = pickle.dumps((validated._replace(flank_yml=b""), update), protocol=pickle.HIGHEST_PROTOCOL)
            with contextlib.suppress(OSError, AttributeError):  # a big flank.yml: the pipe holds it all
                import fcntl

                fcntl.fcntl(to_child, fcntl.F_SETPIPE_SZ, min(len(payload), 1 << 20))
            view = memoryview(payload)
            while view:
                view = view[os.write(to_child, view) :]
            told = True
    except OSError:
        told = False
    finally:
        os.close(to_child)
    if told:
        os.close(claim)  # the child's descriptor of the lock keeps it
    return told


def deploy_when_told(
    word: int, receive_lock: int, paths: ProjectPaths, branch: str, stdin_text: str, receive_pack: int
) -> None:
    """The deploy child, from its start: load what the deploy needs, then wait for pre-receive's word."""
    import pickle

    from flank_ops.deploy import deploy

    deploy.warm_up()
    with open(word, "rb") as pipe:
        payload = pipe.read()
    if not payload:
        return  # the push was refused, or pre-receive failed: nothing to deploy
    validated, update = pickle.loads(payload)
    hand_over(paths, validated, in_memory=True)
    deploy.warm_up(validated.config)
    fifo = paths.bare_repo / POST_RECEIVE_PIPE_MARK.replace("$PPID", str(receive_pack))
    deploy_in_this_process(receive_lock, paths, branch, update, stdin_text, fifo, receive_pack)


def make_post_receive_pipe(paths: ProjectPaths, receive_pack: int) -> Path | None:
    """The named pipe post-receive will copy (in the bare repo, where git runs hooks), or None
    when post-receive is an older shim that deploys by itself (or the pipe cannot be made)."""
    try:
        if POST_RECEIVE_PIPE_MARK not in (paths.bare_repo / "hooks" / "post-receive").read_text(encoding="utf-8"):
            return None
        pipe = paths.bare_repo / POST_RECEIVE_PIPE_MARK.replace("$PPID", str(receive_pack))
        with contextlib.suppress(FileNotFoundError):
            pipe.unlink()
        os.mkfifo(pipe, 0o600)
    except (OSError, UnicodeDecodeError):
        return None
    return pipe


def deploy_in_this_process(
    fd: int,
    paths: ProjectPaths,
    branch: str,
    update: RefUpdate,
    stdin_text: str,
    pipe: Path,
    receive_pack: int,
    limit_s: float = 300,
) -> None:
    """The child of pre-receive: once post-receive opens the pipe (git has moved the refs by
    then), let the next push in and do the post-receive here, writing to the pipe."""
    import time

    from flank_ops import error_handler

    deadline = time.monotonic() + limit_s
    out = None
    try:
        while out is None and time.monotonic() < deadline and os.path.exists(f"/proc/{receive_pack}"):
            try:
                out = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: post-receive is not reading yet
                time.sleep(0.001)
    finally:
        with contextlib.suppress(OSError):
            pipe.unlink()
    let_go(fd)  # the refs have moved (or never will): the next push may take its turn
    from flank_ops.git.bare_repo import branch_tip

    if out is None and branch_tip(paths.bare_repo, branch) != update.new:
        return  # receive-pack went away before moving the branch: nothing to deploy
    if out is not None:  # else post-receive never read the pipe, but the branch moved: deploy, unheard
        os.set_blocking(out, True)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
    sys.stdout = _Tolerant(sys.stdout)
    sys.stderr = _Tolerant(sys.stderr)
    for name in ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES"):
        os.environ.pop(name, None)  # the quarantine is gone: the objects are in the repo now
    if branch_tip(paths.bare_repo, branch) != update.new:  # git did not move the branch after all
        stdin_text = "\n".join(line for line in stdin_text.splitlines() if line.split()[-1:] != [update.ref])
    later: Later = []
    with contextlib.suppress(SystemExit), error_handler.error_handler():
        post_receive(paths, stdin_text, later)
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    # The push has its answer once the pipe closes: what is left (the site's redraw, removing pruned
    # releases) is done after that, by this process, with nobody waiting on its output. It holds the
    # site-draws lock shared from before the answer, as a run's final draw does (run/launch.py
    # fork_detached): whoever must see the site as drawn after the push takes it exclusively.
    with contextlib.ExitStack() as held:
        if later:
            from flank_ops.fileio import locked

            with contextlib.suppress(OSError, UserError):  # no lock (a read-only home): the work all the same
                held.enter_context(locked(paths.home.site_draws_lock, shared=True))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        with contextlib.suppress(OSError):
            os.nice(10)  # behind whatever the user does next (another push, a run)
        for step in later:
            with contextlib.suppress(Exception):
                step()


class _Tolerant:
    """stdout/stderr into the pipe to the push: if the pusher goes away (Ctrl-C, a dropped ssh), the
    deploy carries on with its output on /dev/null instead of stopping at the next line it prints."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self.stream.write(text))
        except (OSError, ValueError):
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            self._to_devnull()

    def _to_devnull(self) -> None:
        fileno = self.stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fileno)
        os.close(devnull)
        self.stream = open(fileno, "w", closefd=False)  # noqa: SIM115 - lives as long as the process

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def wait_for_ref_update(paths: ProjectPaths, branch: str, old: str, receive_pack: int, limit_s: float = 60) -> None:
    """Until the branch moves from `old`, receive-pack exits, or `limit_s` (git moves the ref
    milliseconds after pre-receive; past the limit git's own compare-and-swap still holds)."""
    import select
    import time

    from flank_ops.git.bare_repo import branch_tip
    from flank_ops.git.push_check import ZERO_SHA

    try:
        pidfd = os.pidfd_open(receive_pack)
    except (AttributeError, OSError):
        pidfd = None
    poller = select.poll()
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if (branch_tip(paths.bare_repo, branch) or ZERO_SHA) != old:
            return
        if pidfd is not None:
            if poller.poll(10):
                return  # receive-pack exited: git did not move the branch (nor will it)
        elif not os.path.exists(f"/proc/{receive_pack}"):
            return
        else:
            time.sleep(0.01)


def bad_push_option() -> str | None:
    """issue 13: -o setup=VALUE other than skip or force is refused before the branch moves."""
    if not any(o.partition("=")[0].strip() == "setup" for o in push_options()):
        return None
    from flank_ops.deploy.setup import split_setup_option

    try:
        split_setup_option(push_options())
    except UserError as exc:
        return str(exc)
    return None


def unwritable_state(paths: ProjectPaths) -> str | None:
    """Refuse before any ref moves when the deploy could not be written anyway."""
    for folder in (paths.dir, paths.releases_dir):
        if folder.exists() and not os.access(folder, os.W_OK):
            return f"{folder} is not writable by {os.environ.get('USER') or 'this user'}, so nothing can be deployed\n  fix its owner or mode on the VM, then push again"
    return None


def setup_before_push(
    paths: ProjectPaths, branch: str, update: RefUpdate, config: Config
) -> tuple[str | None, dict[str, Any] | None]:
    """issue 28 item 3: run `setup:` before git moves the branch (deploy/setup.py build_before_push).
    Returns (why the push is refused, the deploys.jsonl "setup" object) or (None, None)."""
    if config.setup is None:
        return None, None
    from flank_ops.deploy.setup import SetupFailed, build_before_push, compute_key, needs_build, split_setup_option

    try:
        option, _ = split_setup_option(push_options())
    except UserError:
        option = None  # refused above already
    short = update.new[:7]
    try:
        if not needs_build(paths, config, option, compute_key(paths.bare_repo, update.new, config.setup)[0]):
            return None, None  # the deploy reuses the key's build: no lock to wait for
        from flank_ops.deploy.deploy import deploy_lock

        with deploy_lock(paths):  # asks again there: a deploy that held the lock may have built it
            build_before_push(paths, update.new, config, option)
    except SetupFailed as exc:
        reason, entry = exc.reason, exc.entry
    except (OSError, UserError) as exc:
        from flank_ops.deploy.deploy import failure_text

        reason, entry = f"setup could not run: {failure_text(exc)}", None
    else:
        return None, None
    previous = paths.current_sha()
    stays = f"{previous[:7]} stays current" if previous else "nothing is deployed yet"
    from flank_ops.git.push_check import ZERO_SHA

    old = "nothing" if update.old == ZERO_SHA else update.old[:7]
    return f"{reason}: {short} is not deployed, {stays} and {branch} stays at {old}\n  {SETUP_ADVICE}", entry


# How a refusal for a failed setup ends: recorded so (the Pushes page shows setup's lines and log
# beside it); in the push's terminal it also says where setup's output is (`_in_terminal`).
SETUP_ADVICE = "fix it, commit and push again"
SETUP_ADVICE_IN_TERMINAL = "its output is above (the whole log: the Pushes page); " + SETUP_ADVICE


def _in_terminal(error: str) -> str:
    """A refusal as the push prints it: a failed setup's advice says where its output went."""
    if error.endswith("\n  " + SETUP_ADVICE):
        return error[: -len(SETUP_ADVICE)] + SETUP_ADVICE_IN_TERMINAL
    return error


def record_rejection(
    paths: ProjectPaths, update: RefUpdate | None, errors: list[str], setup: dict[str, Any] | None = None
) -> None:
    """One deploys.jsonl line for the refused push, then the Pushes page redrawn to show it."""
    from flank_ops.git.gitcmd import commit_info
    from flank_ops.git.push_check import ZERO_SHA
    from flank_ops.store.deploy_log import deploy_entry, record_deploy

    commit: dict[str, str] = {}
    if update is not None and update.new != ZERO_SHA:
        try:
            commit = commit_info(paths.bare_repo, update.new, keep_git_env=True)
        except UserError:
            commit = {"sha": update.new, "short": update.new[:7]}
    try:
        record_deploy(paths, deploy_entry("rejected", update.ref if update else "", commit, errors=errors, setup=setup))
    except OSError:
        return  # the refusal already reached the user; a read-only home must not turn it into a crash
    from flank_ops.deploy.deploy import refresh_site

    for warning in refresh_site(paths):
        say(f"warning: {warning}")


def post_receive(paths: ProjectPaths, stdin_text: str, later: Later | None = None) -> int:
    """Deploy the deploy branch's update (deploy/deploy.py). later: see deploy.deploy."""
    from flank_ops.git.bare_repo import deploy_branch
    from flank_ops.git.push_check import parse_updates

    branch = deploy_branch(paths.bare_repo)
    deploy_ref = f"refs/heads/{branch}"
    updates = [u for u in parse_updates(stdin_text) if u.ref == deploy_ref and not u.deleted]
    others = [u for u in parse_updates(stdin_text) if u.ref.startswith("refs/heads/") and u.ref != deploy_ref]
    for update in others:
        if not update.deleted:
            say(f"branch {update.ref[len('refs/heads/') :]!r} stored, not deployed (this VM deploys {branch!r})")
    if not updates:
        return 0
    from flank_ops.deploy.deploy import deploy_and_start

    return deploy_and_start(paths, branch, updates[-1].new, push_options(), later)
