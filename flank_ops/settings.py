"""VM settings from $FLANK_HOME/flank.toml (all optional).

    site_url = "http://vm.example:8083/"    # base URL of the status site, used in push output and notes
    [ssh] host = "vm.example", port = 2222  # how users reach the VM by ssh, for the hints flank prints
    [s3] ... [notify] ... [ping] ...         # integrations (see README)
    [projects.NAME]                          # per-project overrides of any table above

`settings_for(home, project)` gives the VM-wide values with that project's overrides applied.
Every key, its meaning and its default: settings_catalogue.py (the readers here ask it for defaults).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.hints import settings_docs
from flank_ops.paths import Home
from flank_ops.settings_catalogue import default

DEFAULT_SITE_URL: str = default("", "site_url")


def load_settings(home: Home) -> dict[str, Any]:
    path = home.settings_file
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return {}
    import tomllib  # here: most runs have no flank.toml, and tomllib is 2 ms of every start-up

    try:
        with f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: {exc}", "fix the TOML syntax of flank.toml") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def settings_for(home: Home, project: str | None = None) -> dict[str, Any]:
    raw = load_settings(home)
    overrides = (raw.get("projects") or {}).get(project, {}) if project else {}
    base = {k: v for k, v in raw.items() if k != "projects"}
    return _merge(base, overrides)


def site_url(settings: dict[str, Any]) -> str:
    url = str(settings.get("site_url") or DEFAULT_SITE_URL)
    return url if url.endswith("/") else url + "/"


# --- [serve]: flank serve's actions (issue 23) -----------------------------------


class ServeSettings(NamedTuple):
    actions: bool
    session_hours: float


def serve_settings(home: Home) -> ServeSettings:
    table = load_settings(home).get("serve") or {}
    if not isinstance(table, dict):
        raise UserError("[serve] in flank.toml must be a table", "write it as: [serve]\nactions = true")
    actions = table.get("actions", default("serve", "actions"))
    hours = table.get("session_hours", default("serve", "session_hours"))
    if not isinstance(actions, bool):
        raise UserError(f"[serve] actions = {actions!r} in flank.toml", "write actions = true or actions = false")
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not hours > 0:
        raise UserError(f"[serve] session_hours = {hours!r} in flank.toml", "write a number of hours, e.g. 8")
    return ServeSettings(actions, float(hours))


# --- integrations: typed views of the [s3] and [notify.*] tables ----------------

MIN_MULTIPART_MB = 5  # S3's smallest allowed part


class S3Settings(NamedTuple):
    bucket: str
    prefix: str  # "" or ends with "/"
    region: str | None
    endpoint_url: str | None
    publish_site: bool
    site_bucket: str
    site_prefix: str  # "" or ends with "/"
    multipart_mb: int
    timeout_s: float


class WebhookSettings(NamedTuple):
    url: str
    timeout_s: float


class EmailSettings(NamedTuple):
    host: str
    port: int
    starttls: bool
    ssl: bool
    username: str | None
    password_env: str | None  # name of an env var or project secret holding the password
    sender: str
    to: tuple[str, ...]
    ca_file: str | None  # CA bundle for a server with a private certificate; None = the system's
    timeout_s: float


def _table(settings: dict[str, Any], *names: str) -> dict[str, Any] | None:
    value: Any = settings
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
        if value is None:
            return None
    if not isinstance(value, dict):
        table = f"[{'.'.join(names)}]"
        raise UserError(f"flank.toml: {table} must be a table", f"its keys: {settings_docs(table)}")
    return value


def _get(table: dict[str, Any], where: str, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = table.get(key, default)
    if value is None or isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    raise UserError(f"flank.toml: [{where}] {key} must be a {want}, not {value!r}", "fix it in flank.toml")


def _timeout(table: dict[str, Any], where: str) -> float:
    value = _get(table, where, "timeout", (int, float), default(where, "timeout"))
    if value <= 0:
        raise UserError(f"flank.toml: [{where}] timeout must be a positive number of seconds")
    return float(value)


def _prefix(value: str) -> str:
    value = value.strip("/")
    return value + "/" if value else ""


def s3_settings(settings: dict[str, Any]) -> S3Settings | None:
    """The [s3] table, or None when S3 is not configured. Raises UserError for wrong values."""
    table = _table(settings, "s3")
    if table is None:
        return None
    bucket = _get(table, "s3", "bucket", str)
    if not bucket:
        raise UserError("flank.toml: [s3] needs a bucket", 'add: bucket = "my-bucket"')
    prefix = _prefix(_get(table, "s3", "prefix", str, default("s3", "prefix")))
    multipart_mb = _get(table, "s3", "multipart_mb", int, default("s3", "multipart_mb"))
    if multipart_mb < MIN_MULTIPART_MB:
        raise UserError(f"flank.toml: [s3] multipart_mb must be at least {MIN_MULTIPART_MB} (S3's smallest part)")
    site_prefix = _get(table, "s3", "site_prefix", str)
    return S3Settings(
        bucket=bucket,
        prefix=prefix,
        region=_get(table, "s3", "region", str),
        endpoint_url=_get(table, "s3", "endpoint_url", str),
        publish_site=_get(table, "s3", "publish_site", bool, default("s3", "publish_site")),
        site_bucket=_get(table, "s3", "site_bucket", str) or bucket,
        site_prefix=_prefix(site_prefix) if site_prefix is not None else prefix + "site/",
        multipart_mb=multipart_mb,
        timeout_s=_timeout(table, "s3"),
    )


def webhook_settings(settings: dict[str, Any]) -> WebhookSettings | None:
    table = _table(settings, "notify", "webhook")
    if table is None:
        return None
    url = _get(table, "notify.webhook", "url", str)
    if not url or not url.startswith(("http://", "https://")):
        raise UserError("flank.toml: [notify.webhook] url must be an http:// or https:// URL")
    return WebhookSettings(url=url, timeout_s=_timeout(table, "notify.webhook"))


def email_settings(settings: dict[str, Any]) -> EmailSettings | None:
    table = _table(settings, "notify", "email")
    if table is None:
        return None
    where = "notify.email"
    host = _get(table, where, "host", str)
    to = _get(table, where, "to", (str, list))
    if not host or not to:
        raise UserError(
            f"flank.toml: [{where}] needs host and to", 'e.g. host = "smtp.example.org", to = ["ada@example.org"]'
        )
    to = (to,) if isinstance(to, str) else tuple(str(a) for a in to)
    ssl = _get(table, where, "ssl", bool, default(where, "ssl"))
    username = _get(table, where, "username", str)
    return EmailSettings(
        host=host,
        port=_get(table, where, "port", int, 465 if ssl else 587),
        starttls=_get(table, where, "starttls", bool, not ssl),
        ssl=ssl,
        username=username,
        password_env=_get(table, where, "password_env", str),
        sender=_get(table, where, "from", str) or username or f"flank@{host}",
        to=to,
        ca_file=_get(table, where, "ca_file", str),
        timeout_s=_timeout(table, where),
    )


def ssh_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """[ssh] host, port, user: how users reach this VM, for the hints flank prints (remote/address.py)."""
    table = _table(settings, "ssh") or {}
    return {
        "host": _get(table, "ssh", "host", str),
        "port": _get(table, "ssh", "port", int),
        "user": _get(table, "ssh", "user", str),
        "command_path": _get(table, "ssh", "command_path", str),  # the PATH sshd gives `ssh vm COMMAND`
    }


def ping_timeout(settings: dict[str, Any]) -> float:
    table = _table(settings, "ping")
    return _timeout(table, "ping") if table is not None else float(default("ping", "timeout"))


# --- issue 14: executors ----------------------------------------------------------
#
#   [executors.slurm]
#   partition = "compute"  account = "lab"  qos = "normal"  extra_args = "--gres=gpu:1"
#   [executors.batch]       (see executors/batch.py)

# What to add to flank.toml for each executor, in messages that say one is missing.
CONFIG_EXAMPLES = {
    "slurm": '[executors.slurm]\npartition = "compute"      # optional: account, qos, extra_args = "--gres=gpu:1"',
    "batch": '[executors.batch]\njob_queue = "flank"\njob_definition = "flank-task"\nregion = "eu-west-2"\n'
    'bucket = "my-bucket"',
}


def executor_table(settings: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The [executors.<kind>] table, or None when the VM has no such executor configured."""
    table = _table(settings, "executors", kind)
    return dict(table) if table is not None else None


# --- issue 14: [executors.batch] (AWS Batch) --------------------------------------


class BatchSettings(NamedTuple):
    job_queue: str
    job_definition: str
    bucket: str
    prefix: str  # "" or ends with "/"
    region: str | None
    endpoint_url: str | None
    log_group: str
    poll_interval_s: float
    timeout_s: float
    ship_setup: bool = False  # the default is the catalogue's (settings_catalogue.py); issue 26: setup:'s build goes with each job (batch_staging.py)


def batch_settings_from_table(table: dict[str, Any]) -> BatchSettings:
    """[executors.batch] as a typed value; a missing or wrong key is a UserError naming the lines to add."""
    where = "executors.batch"
    missing = [k for k in ("job_queue", "job_definition", "bucket") if not table.get(k)]
    if missing:
        raise UserError(
            f"flank.toml: [{where}] needs {', '.join(missing)} (executor: batch is not configured on this VM)",
            f"add to $FLANK_HOME/flank.toml:\n{CONFIG_EXAMPLES['batch']}",
        )
    # the executor loop hands the table over with every value as a string: numbers may come as "5"
    table = {k: _number_text(v) if k in ("poll_interval", "timeout") else v for k, v in table.items()}
    poll = _get(table, where, "poll_interval", (int, float), default(where, "poll_interval"))
    if poll <= 0:
        raise UserError(f"flank.toml: [{where}] poll_interval must be a positive number of seconds")
    return BatchSettings(
        job_queue=_get(table, where, "job_queue", str),
        job_definition=_get(table, where, "job_definition", str),
        bucket=_get(table, where, "bucket", str),
        prefix=_prefix(_get(table, where, "prefix", str, default(where, "prefix"))),
        region=_get(table, where, "region", str),
        endpoint_url=_get(table, where, "endpoint_url", str),
        log_group=_get(table, where, "log_group", str, default(where, "log_group")),
        poll_interval_s=float(poll),
        timeout_s=_timeout(table, where),
        # issue 26; the executor loop hands it over as text ("True")
        ship_setup=_get(
            {"ship_setup": _flag_text(table.get("ship_setup", default(where, "ship_setup")))}, where, "ship_setup", bool
        ),
    )


def _number_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value) if value.strip().isdigit() else float(value)
        except ValueError:
            return value
    return value


def _flag_text(value: Any) -> Any:
    return {"True": True, "False": False}.get(value, value) if isinstance(value, str) else value


def batch_settings(settings: dict[str, Any]) -> BatchSettings | None:
    """[executors.batch] of flank.toml, or None when AWS Batch is not configured here."""
    table = _table(settings, "executors", "batch")
    return batch_settings_from_table(table) if table is not None else None


# issue 11: [artifacts] max_mb_per_run = 500   (what one run may keep of its tasks' artifacts:)
DEFAULT_ARTIFACTS_MAX_MB: int = default("artifacts", "max_mb_per_run")


def artifacts_max_mb(settings: dict[str, Any]) -> int:
    """[artifacts] max_mb_per_run: past it a run's further artifacts are not kept (said on its page)."""
    table = _table(settings, "artifacts")
    if table is None:
        return DEFAULT_ARTIFACTS_MAX_MB
    value = _get(table, "artifacts", "max_mb_per_run", int, DEFAULT_ARTIFACTS_MAX_MB)
    if isinstance(value, bool) or value < 0:
        raise UserError(
            f"flank.toml: [artifacts] max_mb_per_run must be 0 or more, not {value!r}",
            "e.g. max_mb_per_run = 500 (0 keeps no artifacts)",
        )
    return int(value)
