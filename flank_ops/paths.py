"""The FLANK_HOME layout: the one place that knows where every file lives.

    $FLANK_HOME/
      NAME.git/                   bare repo receiving pushes
      NAME/
        releases/<sha>/           one immutable checkout per deployed commit
        current -> releases/<sha>
          releases/<sha>/.flank-tracked/<dir>/   the commit's tracked files under a persisted folder
        persist/<dir>/            data kept across deploys (tracked files under <dir> synced in by each deploy)
        persist-tracked/<dir>.json   which files a deploy placed in persist/<dir>/ (deploy/persist_overlay.py)
        secrets.env               KEY=VALUE, mode 0600
        pipelines/<p>.mk          generated Makefile (+ <p>.tasks/ task specs)
        pipelines/validated/<sha>.flank.yml   the flank.yml release <sha> was validated with (runs read it)
        pipelines/validated/<sha>.config      its validated Config, pickled (runs load it: no re-parse)
        crontab                   the generated crontab block
        runs/<p>/<run-id>/        run record (run.json), task results, logs
        fingerprints/<p>/<task>.json  what a task's last success depended on (incremental runs)
        fingerprints/hash-cache.tsv   content hashes by (path, size, mtime, inode); .salt keys env hashes
        deploys.jsonl             one line per push handled
        notify-warning.txt        the "notify: … nothing will be sent" warning the last push said
        setup/                    issue 13: setup's builds per key, logs, which build each release uses
                                  (the layout inside: deploy/setup.py)
        s3-pending.json           runs whose S3 upload failed (retried later)
        .locks/                   flock files: <what>.lock (deploy, notes, ...) and
                                  <what>/<pipeline>.lock (run, run-id, ...: one folder per kind)
      site/                       the static status site
      users.json                  who may act from the site (flank users; scrypt hashes), mode 0600
      actions.jsonl               audit log of `flank serve --actions`: sign-ins, runs, cancels
      .flank/                     flank's own cache (task launcher, DAG layouts, crash log),
                                  vm-busy.lock (held by runs), cost-plan.json (flank cost apply),
                                  prices/<region>.csv (flank cost prices)
                                  serve-actions (once `flank serve --actions` ran: pages carry its buttons)
      flank.toml                  optional VM settings

Local mode (`flank run --local` on a laptop) keeps the same per-project layout
under `<working copy>/.flank/`, with the working copy itself as the release.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from flank_ops.errors import UserError

RELEASE_TRACKED_DIR = ".flank-tracked"
STATE_DIR = ".flank"  # flank's own folder: FLANK_HOME's cache; a working copy's local-mode project
PROJECT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def flank_home() -> Path:
    raw = os.environ.get("FLANK_HOME") or "~/flank"
    return Path(os.path.abspath(os.path.expanduser(raw)))


def local_project_name(working_copy: Path) -> str:
    """A laptop working copy's project name: its folder's name, cleaned ("my proj" -> "my-proj")."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", working_copy.name) or "local"


def check_project_name(name: str) -> str:
    if not PROJECT_NAME_RE.match(name) or name.endswith(".git") or name in ("site",):
        raise UserError(
            f"invalid project name {name!r}",
            "use letters, digits, '_', '-' and '.', starting with a letter or digit (e.g. 'myproj')",
        )
    return name


class NoSuchProject(UserError):
    """A project name this FLANK_HOME does not hold (main.py may point a laptop clone at `flank remote`)."""


class Home:
    """VM-wide paths under FLANK_HOME."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else flank_home()

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    @property
    def settings_file(self) -> Path:
        return self.root / "flank.toml"

    @property
    def users_file(self) -> Path:
        """Who may act from the site (`flank users`): names, roles, scrypt hashes; 0600."""
        return self.root / "users.json"

    @property
    def actions_log(self) -> Path:
        """Every action asked of `flank serve --actions` (sign-ins, runs, cancels), one JSON line each."""
        return self.root / "actions.jsonl"

    @property
    def serve_actions_marker(self) -> Path:
        """Present once `flank serve --actions` has run: site pages then carry the hidden action buttons."""
        return self.internal_dir / "serve-actions"

    @property
    def internal_dir(self) -> Path:
        """flank's own cache (compiled task launcher, crash log)."""
        return self.root / STATE_DIR

    @property
    def cost_plan(self) -> Path:
        """What `flank cost apply` applied (idle size, schedules): read by the shrink after a run."""
        return self.internal_dir / "cost-plan.json"

    @property
    def price_cache_dir(self) -> Path:
        """EC2 prices per region fetched by `flank cost prices` (<region>.csv, headed by their date)."""
        return self.internal_dir / "prices"

    @property
    def memory_reservations_dir(self) -> Path:
        """issue 14: one file per running local task that declared memory: (its pid, its MB)."""
        return self.internal_dir / "memory"

    @property
    def busy_lock(self) -> Path:
        """Held shared by every run while it runs; a VM shrink (cost/shrink.py) takes it exclusively."""
        return self.internal_dir / "vm-busy.lock"

    @property
    def site_draws_lock(self) -> Path:
        """Held shared by each run's final site draw, which goes on after `flank run` has answered
        (finish/run_steps.py); whoever must see those pages drawn takes it exclusively."""
        return self.internal_dir / "site-draws.lock"

    @property
    def dag_layouts_dir(self) -> Path:
        """Task-graph layouts computed by Graphviz dot, one file per DAG (site/dag_layout.py)."""
        return self.internal_dir / "dag-layouts"

    @property
    def grid_columns_dir(self) -> Path:
        """A finished run's column of its pipeline page's task grid, one file per run (site/grid.py)."""
        return self.internal_dir / "grid-columns"

    @property
    def run_uses_dir(self) -> Path:
        """What a finished run used (its memory over time, its tasks' figures), one file per run
        (cost/resources.py): the resources page reads these, not its 30 newest records whole."""
        return self.internal_dir / "run-uses"

    @property
    def s3_site_manifest(self) -> Path:
        """What the last S3 site publish uploaded (key -> size, mtime, md5), to send only changes."""
        return self.internal_dir / "s3-site-manifest.json"

    @property
    def s3_site_lock(self) -> Path:
        return self.internal_dir / "s3-site.lock"

    def project(self, name: str) -> ProjectPaths:
        return ProjectPaths(self, check_project_name(name))

    def projects(self) -> list[str]:
        """Names of every project initialised here (those with a bare repo)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name[: -len(".git")] for p in self.root.iterdir() if p.name.endswith(".git") and (p / "HEAD").exists()
        )


class ProjectPaths:
    """Every path belonging to one project."""

    def __init__(self, home: Home, name: str, project_dir: Path | None = None) -> None:
        self.home = home
        self.name = name
        self.dir = project_dir if project_dir is not None else home.root / name
        self.local = project_dir is not None

    @classmethod
    def for_local(cls, working_copy: Path) -> ProjectPaths:
        """A laptop working copy: state under <working copy>/.flank/."""
        state = working_copy / STATE_DIR
        return cls(Home(state), local_project_name(working_copy), project_dir=state)

    # --- git -------------------------------------------------------------
    @property
    def bare_repo(self) -> Path:
        return self.home.root / f"{self.name}.git"

    def exists(self) -> bool:
        return self.local or (self.bare_repo / "HEAD").exists()

    def require(self) -> ProjectPaths:
        if not self.exists():
            known = self.home.projects()
            hint = f"known projects: {', '.join(known)}" if known else f"create it with: flank init {self.name}"
            raise NoSuchProject(f"no project {self.name!r} in {self.home.root}", hint)
        return self

    # --- deploys ---------------------------------------------------------
    @property
    def releases_dir(self) -> Path:
        return self.dir / "releases"

    def release_dir(self, sha: str) -> Path:
        return self.releases_dir / sha

    def release_config(self, sha: str) -> Path:
        """The flank.yml the deploy of `sha` validated, as runs must read it (never the checkout's)."""
        return self.pipelines_dir / "validated" / f"{sha}.flank.yml"

    @property
    def current(self) -> Path:
        return self.dir / "current"

    @property
    def persist_dir(self) -> Path:
        return self.dir / "persist"

    def persist_manifest(self, name: str) -> Path:
        """Which tracked files the deploys placed in persist/<name>/ (issue 11: the overlay)."""
        return self.dir / "persist-tracked" / (name.replace("%", "%25").replace("/", "%2F") + ".json")

    @staticmethod
    def release_tracked(release: Path, name: str) -> Path:
        """The commit's tracked files under persisted folder `name`, moved aside in its release."""
        return release / RELEASE_TRACKED_DIR / name

    @property
    def secrets_env(self) -> Path:
        return self.dir / "secrets.env"

    @property
    def deploys_log(self) -> Path:
        return self.dir / "deploys.jsonl"

    @property
    def notify_warning_said(self) -> Path:
        """The `notify:`-with-nowhere-to-send warning the last push said (absent: none), so the next
        push says it only when it changed (deploy/deploy.py notify_warnings)."""
        return self.dir / "notify-warning.txt"

    @property
    def setup_dir(self) -> Path:
        """issue 13: what `setup:` built, carried over between releases (see deploy/setup.py)."""
        return self.dir / "setup"

    def validated_config(self, sha: str) -> Path:
        """The Config pre-receive validated for `sha`, handed to post-receive (saves a re-parse)."""
        return self.dir / ".validated" / f"{sha}.pickle"

    def validated_flank_yml(self, sha: str) -> Path:
        """The flank.yml bytes pre-receive validated for `sha`, handed to the deploy (saves git calls)."""
        return self.dir / ".validated" / f"{sha}.flank.yml"

    def config_cache(self, sha: str | None) -> Path:
        """Release `sha`'s validated Config (None: the working copy's), pickled, so a run loads it
        instead of parsing and validating flank.yml again (git/release_config.py)."""
        if sha is None:
            return self.dir / "flank.yml.validated"
        return self.pipelines_dir / "validated" / f"{sha}.config"

    # --- generated -------------------------------------------------------
    @property
    def pipelines_dir(self) -> Path:
        return self.dir / "pipelines"

    def makefile(self, pipeline: str) -> Path:
        return self.pipelines_dir / f"{pipeline}.mk"

    def task_specs_dir(self, pipeline: str) -> Path:
        return self.pipelines_dir / f"{pipeline}.tasks"

    @property
    def crontab_file(self) -> Path:
        return self.dir / "crontab"

    # --- runs ------------------------------------------------------------
    @property
    def runs_root(self) -> Path:
        return self.dir / "runs"

    def runs_dir(self, pipeline: str) -> Path:
        return self.runs_root / pipeline

    def pipelines_with_runs(self) -> list[str]:
        """The pipelines that have a runs folder (those of flank.yml and any dropped since), sorted."""
        if not self.runs_root.is_dir():
            return []
        return sorted(p.name for p in self.runs_root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def run_dir(self, pipeline: str, run_id: int) -> Path:
        return self.runs_dir(pipeline) / str(run_id)

    def backfills_dir(self, pipeline: str) -> Path:
        """issue 23: `flank backfill`'s plans and progress, <id>.json each (schedule/backfill.py)."""
        return self.runs_dir(pipeline) / "backfills"

    @property
    def s3_pending(self) -> Path:
        """Runs whose S3 upload failed, retried by the next run or `flank sync`."""
        return self.dir / "s3-pending.json"

    # --- fingerprints (incremental runs, run/fingerprints.py) ---------------
    @property
    def fingerprints_root(self) -> Path:
        """Outside releases/ and runs/: fingerprints survive deploys and pruning."""
        return self.dir / "fingerprints"

    def fingerprint_file(self, pipeline: str, task: str) -> Path:
        return Path(f"{self.fingerprints_root}/{pipeline}/{task}.json")  # one Path, not three: asked for every task

    def up_to_date_file(self, pipeline: str) -> Path:
        """The pipeline's last all-up-to-date decision and what it looked at (incremental/up_to_date.py)."""
        return self.fingerprints_root / ".up-to-date" / f"{pipeline}.json"

    @property
    def hash_cache(self) -> Path:
        return self.fingerprints_root / "hash-cache.tsv"

    @property
    def fingerprint_salt(self) -> Path:
        return self.fingerprints_root / ".salt"

    # --- locks -----------------------------------------------------------
    @property
    def locks_dir(self) -> Path:
        return self.dir / ".locks"

    def lock_file(self, what: str, pipeline: str | None = None) -> Path:
        """The flock file for `what` ("deploy", "notes", ...), or for `what` of one pipeline ("run",
        "run-id", ...). A pipeline's locks live in a folder per kind, `<what>/<pipeline>.lock`, so
        two different (what, pipeline) pairs never share a file: "run" of `id-foo` and "run-id" of
        `foo` were both `run-id-foo.lock` when the names were joined with '-'."""
        if not what or "/" in what or "\0" in what:
            raise ValueError(f"bad lock name {what!r}")
        if pipeline is None:
            return self.locks_dir / f"{what}.lock"
        if not pipeline or "/" in pipeline or "\0" in pipeline or pipeline in (".", ".."):
            raise ValueError(f"bad pipeline name for a lock {pipeline!r}")
        return self.locks_dir / what / f"{pipeline}.lock"

    def current_sha(self) -> str | None:
        """The deployed commit, or None before the first deploy."""
        if self.local:
            return None
        try:
            return os.path.basename(os.readlink(self.current))
        except OSError:
            return None
