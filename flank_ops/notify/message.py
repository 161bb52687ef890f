"""What a notification says: project, pipeline, run, failed tasks, their log tails, the run page.

One Message, rendered as plain text (email) or Slack-style markdown (webhook).
Every piece of text that comes from a run goes through the project's secret mask.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from flank_ops.fileio import tail_lines
from flank_ops.humanize import LONG, clock, duration
from flank_ops.paths import ProjectPaths
from flank_ops.site.layout import run_url
from flank_ops.store import records
from flank_ops.store.model import FAILED_TASK_STATUSES, RunRecord, RunStatus, TaskResult, TaskStatus, params_text

TAIL_LINES = 20
TAIL_TASKS = 2  # log tails for the first failed tasks; the rest are listed
MAX_LINE = 300
TAIL_BYTES = 64 * 1024
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
HEADLINES = {"failure": "failed", "success": "succeeded", "recovery": "recovered"}


class TaskLines(NamedTuple):
    """A failed task's last log lines, as a message quotes them (the site's is site/logs.LogTail)."""

    task: str
    lines: list[str]


class Message(NamedTuple):
    subject: str
    summary: list[str]  # the facts, one per line
    tails: list[TaskLines]
    run_url: str

    def as_text(self) -> str:
        out = list(self.summary)
        for tail in self.tails:
            out += ["", f"last {len(tail.lines)} lines of {tail.task}.log:"] + [f"    {line}" for line in tail.lines]
        out += ["", f"run page: {self.run_url}"]
        return "\n".join(out) + "\n"

    def as_slack(self) -> str:
        """Slack mrkdwn. Text from the run (a commit subject, a log line) is escaped, so
        `<!here>` or `<url|text>` in it is shown as written, never a mention or a link."""
        out = [f"*{slack_escape(self.subject)}*"] + [slack_escape(line) for line in self.summary[1:]]
        for tail in self.tails:
            body = slack_escape("\n".join(tail.lines).replace("```", "'''"))
            out += [f"last {len(tail.lines)} lines of {slack_escape(tail.task)}.log:", f"```{body}```"]
        out += [f"<{slack_escape(self.run_url)}|run page>"]
        return "\n".join(out)


def slack_escape(text: str) -> str:
    """The three characters Slack's message format gives a meaning (api.slack.com, "Escaping text")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def log_tail(path: Path, lines: int = TAIL_LINES, secrets: dict[str, str] | None = None) -> list[str]:
    """The last lines of a log without reading all of it (logs can be gigabytes), secrets masked
    before lines are cut short (a cut secret would no longer be recognised)."""
    try:
        data = b"\n".join(line for _, line in tail_lines(path, lines, TAIL_BYTES).lines)
    except OSError:
        return []
    from flank_ops.task.secrets import mask

    text = data.decode("utf-8", "surrogateescape")
    # with secrets, also masked after removing colours: a colour code inside a value hid it from the launcher's mask
    text = mask(ANSI_RE.sub("", mask(text, secrets)), secrets) if secrets else ANSI_RE.sub("", text)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    kept = text.splitlines()
    return [line if len(line) <= MAX_LINE else line[:MAX_LINE] + "…" for line in kept[-lines:]]


def failed_tasks(record: RunRecord) -> list[tuple[str, TaskResult]]:
    return [(name, t) for name, t in record.tasks.items() if t.status in FAILED_TASK_STATUSES]


def _task_detail(name: str, task: TaskResult) -> str:
    bits = []
    if task.status == TaskStatus.TIMED_OUT:
        bits.append("timed out")
    elif task.exit_code is not None:
        bits.append(f"exit {task.exit_code}")
    if (task.attempts or 1) > 1:
        bits.append(f"{task.attempts} attempts")
    return f"{name} ({', '.join(bits)})" if bits else name


def build_message(
    paths: ProjectPaths, record: RunRecord, outcome: str, base_url: str, secrets: dict[str, str] | None = None
) -> Message:
    from flank_ops.site.outputs import main_report_url
    from flank_ops.task.secrets import mask

    secrets = secrets or {}
    project, pipeline, run_id = record.project, record.pipeline, record.run_id
    headline = f"{project} {pipeline} #{run_id} {HEADLINES.get(outcome, record.status)}"
    summary = [headline + (f" — {record.summary}" if record.summary else "")]
    commit = record.commit
    if commit.short:
        by = f" ({commit.author})" if commit.author else ""
        summary.append(f'commit {commit.short} "{commit.message or ""}"{by}')
    started = clock(record.started_at, record.timezone, LONG) if record.started_at else "?"
    when = f"trigger: {record.trigger or '?'}, started {started}"
    if record.duration_s is not None:
        when += f", took {duration(record.duration_s)}"
    summary.append(when)
    params = params_text(record)  # issue 23: only those not at their default
    if params:
        summary.append(f"parameters: {params}")
    failed = failed_tasks(record)
    if failed:
        summary.append("failed tasks: " + ", ".join(_task_detail(n, t) for n, t in failed))
    if record.status == RunStatus.INTERRUPTED:
        summary.append("the runner stopped before the run finished (machine restart or killed)")
    report = main_report_url(base_url, record)  # issue 11: the HTML report the run kept, if any
    if report:
        summary.append(f"report: {report}")

    run_dir = paths.run_dir(pipeline, run_id)
    tails = []
    for name, task in failed[:TAIL_TASKS]:
        lines = log_tail(records.task_log_file(run_dir, name, task), secrets=secrets)
        if lines:
            tails.append(TaskLines(name, lines))
    return Message(
        subject=mask(f"flank: {headline}", secrets),
        summary=[mask(line, secrets) for line in summary],
        tails=tails,
        run_url=run_url(base_url, project, pipeline, run_id),
    )
