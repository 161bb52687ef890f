"""Every key of $FLANK_HOME/flank.toml: its section, type, default and meaning.

The one list of what flank.toml may hold. The typed readers (settings.py, cost/settings.py, the
executors) read these keys; `flank doctor` reports a key that is not here (a typo is otherwise silently
ignored); docs/reference/flank-toml.md is generated from it, with one example per section.
tests/settings_catalogue_test.py feeds each section's example through its reader, so the two cannot drift.

A `[projects.NAME]` table may repeat any section for one project (`[projects.NAME.s3]`, …); its values
override the VM-wide ones for that project.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Key(NamedTuple):
    name: str
    kind: str  # as a reader says it: "string", "integer", "number", "boolean", "list of strings"
    example: str  # a TOML value
    text: str  # what it does (and a default that is not one value: "default: boto3's usual lookup")
    required: bool = False
    # The value a reader uses when the key is left out: its one home (readers ask `default`); None when
    # there is none or it depends on something else (`describe` adds it to the text).
    default: str | bool | int | float | None = None


class Section(NamedTuple):
    name: str  # "" for top-level keys; dotted for nested tables ("notify.email")
    summary: str
    keys: tuple[Key, ...]


SECTIONS: tuple[Section, ...] = (
    Section(
        "",
        "VM-wide keys, before any table.",
        (
            Key(
                "site_url",
                "string",
                '"http://vm.example:8083/"',
                "base URL of the status site, used in push output, git notes, e-mails and webhooks",
                default="http://127.0.0.1:8083/",
            ),
        ),
    ),
    Section(
        "schedule",
        "How schedules reach cron.",
        (
            Key(
                "install_crontab",
                "boolean",
                "true",
                "write the pipelines' schedules into the user's crontab at each push; false "
                "leaves cron alone, for `flank scheduler` or your own cron lines",
                default=True,
            ),
        ),
    ),
    Section(
        "serve",
        "`flank serve`: actions in the browser (sign-in, Run, Rerun, Cancel, live pages).",
        (
            Key("actions", "boolean", "true", "as `flank serve --actions`", default=False),
            Key("session_hours", "number", "8", "a sign-in lasts this long", default=8),
        ),
    ),
    Section(
        "prune",
        "Defaults of `flank prune` (its --keep / --keep-days override them).",
        (
            Key("keep", "integer", "200", "keep at least this many newest runs per pipeline"),
            Key("keep_days", "number", "90", "keep every run younger than this many days"),
        ),
    ),
    Section(
        "artifacts",
        "Files kept from each run (flank.yml's `artifacts:`).",
        (Key("max_mb_per_run", "integer", "500", "at most this many MB kept per run", default=500),),
    ),
    Section(
        "s3",
        "Upload run records, logs, kept files and the site to S3 (or an S3-compatible server).",
        (
            Key("bucket", "string", '"my-bucket"', "the bucket; setting it turns S3 uploads on", required=True),
            Key("prefix", "string", '"flank"', "key prefix for run records and logs", default=""),
            Key("region", "string", '"eu-west-2"', "default: boto3's usual lookup"),
            Key("endpoint_url", "string", '"http://127.0.0.1:9000"', "an S3-compatible server (MinIO, SeaweedFS, …)"),
            Key("publish_site", "boolean", "true", "publish the status site too", default=True),
            Key("site_bucket", "string", '"status-site"', "bucket of the site (default: bucket)"),
            Key(
                "site_prefix",
                "string",
                '""',
                'prefix of the site (default "<prefix>/site"; "" = the bucket root, for S3 website hosting)',
            ),
            Key(
                "multipart_mb",
                "integer",
                "8",
                "files larger than this go up in parts of this size, at least 5",
                default=8,
            ),
            Key("timeout", "number", "10", "seconds per network call", default=10),
        ),
    ),
    Section(
        "notify.webhook",
        "Post run outcomes (flank.yml's `notify:`) to a Slack/Teams-compatible webhook.",
        (
            Key("url", "string", '"https://hooks.slack.com/services/T000/B000/XXXX"', "the webhook", required=True),
            Key("timeout", "number", "10", "seconds", default=10),
        ),
    ),
    Section(
        "notify.email",
        "E-mail run outcomes (flank.yml's `notify:`) over SMTP.",
        (
            Key("host", "string", '"smtp.example.org"', "the SMTP server", required=True),
            Key("to", "string or list of strings", '["ada@example.org"]', "recipients", required=True),
            Key("port", "integer", "587", "default 465 with ssl, else 587"),
            Key("ssl", "boolean", "false", "implicit TLS, port 465", default=False),
            Key("starttls", "boolean", "true", "upgrade to TLS (default: true unless ssl)"),
            Key("username", "string", '"flank@example.org"', "login, if the server wants one"),
            Key(
                "password_env",
                "string",
                '"SMTP_PASSWORD"',
                "the name of a project secret (`flank secrets set`) holding the password",
            ),
            Key("from", "string", '"flank@example.org"', "sender (default: username, else flank@<host>)"),
            Key("ca_file", "string", '"/etc/ssl/private-ca.pem"', "for a server with a private certificate"),
            Key("timeout", "number", "10", "seconds", default=10),
        ),
    ),
    Section(
        "ping",
        "Health-check pings (flank.yml's `ping_url:`).",
        (Key("timeout", "number", "10", "seconds per ping", default=10),),
    ),
    Section(
        "executors.slurm",
        "Send tasks with `executor: slurm` to a Slurm cluster through sbatch.",
        (
            Key("partition", "string", '"compute"', "sbatch --partition"),
            Key("account", "string", '"lab"', "sbatch --account"),
            Key("qos", "string", '"normal"', "sbatch --qos"),
            Key("extra_args", "string", '"--gres=gpu:1"', "more sbatch options, split like a shell would"),
        ),
    ),
    Section(
        "executors.batch",
        "Send tasks with `executor: batch` to AWS Batch.",
        (
            Key("job_queue", "string", '"flank-queue"', "the Batch job queue (name or ARN)", required=True),
            Key(
                "job_definition",
                "string",
                '"flank-job"',
                "a job definition whose container runs flank's entrypoint",
                required=True,
            ),
            Key("bucket", "string", '"my-bucket"', "S3 bucket for release tarballs and per-job secrets", required=True),
            Key("prefix", "string", '"flank"', "key prefix in that bucket", default=""),
            Key("region", "string", '"eu-west-2"', "default: boto3's usual lookup"),
            Key("endpoint_url", "string", '"http://127.0.0.1:5000"', "one endpoint for Batch, CloudWatch Logs and S3"),
            Key(
                "log_group",
                "string",
                '"/aws/batch/job"',
                "where the awslogs driver writes, as Batch's own default",
                default="/aws/batch/job",
            ),
            Key("poll_interval", "number", "5", "seconds between describe_jobs calls", default=5),
            Key("timeout", "number", "10", "seconds per AWS call", default=10),
            Key(
                "ship_setup",
                "boolean",
                "true",
                "send setup:'s build (a venv, an R library) with each job, for an image without the packages",
                default=False,
            ),
        ),
    ),
    Section(
        "cost",
        "Right-size the VM: `flank cost plan` and `flank cost apply`.",
        (
            Key("region", "string", '"us-east-1"', "the region whose prices and types are used", default="us-east-1"),
            Key(
                "families",
                "list of strings",
                '["m6a", "r6a"]',
                "instance families allowed (default: all but burstable ones)",
            ),
            Key("headroom", "number", "0.25", "memory kept free above the measured peak", default=0.25),
            Key("current_type", "string", '"r6a.8xlarge"', "today's type (default: asked of EC2)"),
            Key("instance_id", "string", '"i-0123456789abcdef0"', "this VM (default: the instance metadata)"),
            Key(
                "scheduler_role_arn",
                "string",
                '"arn:aws:iam::123456789012:role/flank-resize"',
                "the role EventBridge Scheduler uses; needed by `flank cost apply`",
            ),
            Key("idle_memory_gib", "number", "4", "what the VM needs when no pipeline runs", default=4),
            Key("idle_cpus", "integer", "2", "CPUs the VM needs when no pipeline runs", default=2),
            Key("grow_lead_minutes", "integer", "15", "grow this long before a scheduled run", default=15),
            Key(
                "endpoint_url", "string", '"http://127.0.0.1:5000"', "an AWS-compatible endpoint (tests, VPC endpoints)"
            ),
            Key(
                "types_file", "string", '"/home/you/ec2_types.csv"', "your own price table (the shipped one's columns)"
            ),
            Key("arch", "string", '"x86_64"', "the CPU architecture to size for: x86_64 or arm64 (default: the VM's)"),
        ),
    ),
    Section(
        "ssh",
        "How users reach this VM over ssh: the hints flank prints (push, `flank init`) and commands run over ssh.",
        (
            Key(
                "host", "string", '"vm.example.org"', "the host name users ssh to (default: the one they connected to)"
            ),
            Key("port", "integer", "22", "the ssh port (default: the one they connected to)"),
            Key("user", "string", '"ada"', "the user name in printed ssh commands (default: this user)"),
            Key(
                "command_path",
                "string",
                '"/usr/bin:/bin"',
                "the PATH sshd gives `ssh vm COMMAND` (default: the system's); `flank init` checks flank is on it",
            ),
        ),
    ),
)


def section(name: str) -> Section:
    return next(s for s in SECTIONS if s.name == name)


def default(section_name: str, key_name: str) -> Any:
    """The value the readers use when flank.toml leaves [section_name] key_name out."""
    value = next(k for k in section(section_name).keys if k.name == key_name).default
    if value is None:
        raise KeyError(f"[{section_name}] {key_name} has no default in the catalogue")
    return value


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def describe(key: Key) -> str:
    """What the key does, with its default: the text of the reference and of the example's comments."""
    return key.text if key.default is None else f"{key.text} (default {toml_value(key.default)})"


def example_toml(sec: Section) -> str:
    """The section as flank.toml lines, every key with its example value and meaning."""
    width = max(len(f"{k.name} = {k.example}") for k in sec.keys)
    lines = [f"[{sec.name}]"] if sec.name else []
    for k in sec.keys:
        line = f"{k.name} = {k.example}"
        lines.append(f"{line.ljust(width)}   # {'required: ' if k.required else ''}{describe(k)}")
    return "\n".join(lines) + "\n"


def unknown_keys(settings: dict[str, object]) -> list[tuple[str, str, list[str]]]:
    """(where, key, the keys known there) for each key of a flank.toml that no section lists."""
    by_name = {s.name: s for s in SECTIONS}
    found: list[tuple[str, str, list[str]]] = []

    def known_at(prefix: str) -> list[str]:
        keys = [k.name for k in by_name[prefix].keys] if prefix in by_name else []
        if prefix:
            deeper = {n[len(prefix) + 1 :].split(".")[0] for n in by_name if n.startswith(prefix + ".")}
        else:
            deeper = {n.split(".")[0] for n in by_name if n} | {"projects"}
        return sorted(set(keys) | (deeper - set(keys)))

    def walk(table: dict[str, object], prefix: str, where: str) -> None:
        for key, value in table.items():
            path = f"{prefix}.{key}" if prefix else key
            if not where and key == "projects" and isinstance(value, dict):
                for project, overrides in value.items():
                    if isinstance(overrides, dict):
                        walk(overrides, "", f"projects.{project}")
            elif isinstance(value, dict) and any(n == path or n.startswith(path + ".") for n in by_name):
                walk(value, path, f"{where}.{key}" if where else key)
            elif prefix not in by_name or key not in {k.name for k in by_name[prefix].keys}:
                found.append((f"[{where}]" if where else "the top level", key, known_at(prefix)))

    walk(settings, "", "")
    return found
