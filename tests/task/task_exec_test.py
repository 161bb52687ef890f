"""The task launcher, both implementations (compiled task_exec.c and task_exec.py),
driven as make drives it: `LAUNCHER SPEC_FILE RUN_DIR`, real processes, real files."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flank_ops.run.makefile import direct_argv
from flank_ops.task import launcher
from flank_ops.task.task_exec import (
    SecretMasker,
    TaskSpec,
    decode_spec,
    encode_spec,
    encode_specs_file,
    read_spec_bytes,
    specs_file_names,
)
from helpers.launchers import Launch, launch, launcher_argv  # noqa: F401 - fixtures: both launchers
from helpers.waiting import process_gone, wait_for

# --- the spec format -----------------------------------------------------------


def test_spec_round_trips_any_text() -> None:
    spec = TaskSpec(
        task="t",
        command="echo \"$x\" '#' 100% \\\nnext ünï €",
        cwd="/a b/c",
        retries=2,
        retry_delay_s=0.5,
        timeout_s=7.0,
        argv=(),
        env=(("A", "1=2"), ("B", "")),
    )
    assert decode_spec(encode_spec(spec)) == spec


def test_masker_holds_back_only_a_possible_secret_start() -> None:
    masker = SecretMasker([b"secret", b"sec-long-secret"])
    out = masker.feed(b"a sec") + masker.feed(b"ret b se") + masker.feed(b"x", final=True)
    assert out == b"a *** b sex"


# --- behaviour -------------------------------------------------------------------


def test_success_records_result_and_streams_output(launch: Launch) -> None:
    proc = launch.run(
        'echo "out $FLANK_TASK $MODEL"; echo err >&2; pwd',
        task="extract",
        environ={"MAKEFLAGS": "-k -j2"},
        argv=(),
        env=(("MODEL", "glm"),),
    )
    assert proc.returncode == 0, proc.stderr
    assert launch.log("extract") == f"out extract glm\nerr\n{launch.cwd}\n".encode()
    result = launch.result("extract")
    assert result["status"] == "success"
    assert result["attempts"] == 1
    assert result["exit_code"] == 0
    assert result["log"] == "logs/extract.log"
    assert result["started_at"].endswith("+00:00") and result["ended_at"] >= result["started_at"]
    assert isinstance(result["duration_s"], (float, int))
    assert result["peak_rss_kb"] > 0


def test_make_variables_do_not_leak_into_the_task(launch: Launch) -> None:
    launch.run('echo "[$MAKEFLAGS][$MAKELEVEL]"', environ={"MAKEFLAGS": "-k -j2 RUN_DIR=/x", "MAKELEVEL": "1"})
    assert launch.log() == b"[][]\n"


def test_direct_exec_without_a_shell(launch: Launch) -> None:
    assert direct_argv("printf %s-%s a b") == ("printf", "%s-%s", "a", "b")
    proc = launch.run("printf %s-%s a b")
    assert proc.returncode == 0
    assert launch.log() == b"a-b"


def test_failure_exit_code_and_nonzero_exit(launch: Launch) -> None:
    proc = launch.run("echo trying; exit 3")
    assert proc.returncode != 0
    result = launch.result()
    assert (result["status"], result["exit_code"], result["attempts"]) == ("failed", 3, 1)


def test_retries_wait_doubling_and_say_so_in_the_log(launch: Launch, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    command = f'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo "try $n"; [ $n -ge 3 ]'
    proc = launch.run(command, retries=3, retry_delay_s=0.1)
    assert proc.returncode == 0
    result = launch.result()
    assert (result["status"], result["attempts"]) == ("success", 3)
    assert launch.log() == (
        b"try 1\nflank: attempt 2 of 4 after 0.1s\ntry 2\nflank: attempt 3 of 4 after 0.2s\ntry 3\n"
    )


def test_retries_exhausted_is_failed(launch: Launch) -> None:
    proc = launch.run("exit 5", retries=1, retry_delay_s=0.05)
    assert proc.returncode != 0
    result = launch.result()
    assert (result["status"], result["attempts"], result["exit_code"]) == ("failed", 2, 5)


PROCESS_TREE = (
    # a background job, a child, and a grandchild of that child, each writing its pid
    "sleep 300 & echo $! > bg.pid; "
    "sh -c 'sleep 300 & echo $! > grandchild.pid; echo $$ > child.pid; wait' & "
    "while [ ! -s grandchild.pid ] || [ ! -s child.pid ]; do sleep 0.01; done; "
    "echo started; wait"
)


def _tree_pids(cwd: Path) -> list[int]:
    return [int((cwd / f"{name}.pid").read_text()) for name in ("bg", "child", "grandchild")]


@pytest.mark.slow
def test_timeout_kills_the_whole_process_tree(launch: Launch) -> None:
    proc = launch.run(PROCESS_TREE, timeout_s=1.0)
    assert proc.returncode != 0
    result = launch.result()
    assert result["status"] == "timed_out"
    log = launch.log().decode()
    assert log.startswith("started\n")
    assert "flank: timed out after 1s; stopping the task and everything it started" in log
    for pid in _tree_pids(launch.cwd):
        wait_for(lambda: process_gone(pid), f"process {pid} to be gone", timeout=10.0)


@pytest.mark.slow
def test_timeout_escalates_to_sigkill(launch: Launch) -> None:
    proc = launch.run("trap '' TERM; echo ready; while :; do sleep 0.05; done", timeout_s=0.3, kill_grace_s=0.3)
    assert proc.returncode != 0
    assert launch.result()["status"] == "timed_out"


def test_leftover_background_jobs_of_a_finished_task_are_ended(launch: Launch) -> None:
    proc = launch.run("sleep 300 & echo $! > bg.pid; echo done")
    assert proc.returncode == 0
    assert launch.result()["status"] == "success"
    pid = int((launch.cwd / "bg.pid").read_text())
    wait_for(lambda: process_gone(pid), "the background job to be gone", timeout=10.0)


def test_peak_rss_is_recorded(launch: Launch) -> None:
    command = f"{sys.executable} -c \"b = b'x' * (50 * 1024 * 1024); print(len(b))\""
    launch.run(command)
    result = launch.result()
    assert result["status"] == "success"
    assert result["peak_rss_kb"] >= 40_000


def test_command_not_found_says_so(launch: Launch) -> None:
    launch.run("Rscript-not-installed-here R/model.R")
    result = launch.result()
    assert (result["status"], result["exit_code"]) == ("failed", 127)
    assert "flank: command not found: Rscript-not-installed-here — is it installed on this VM" in launch.log().decode()


def test_command_not_found_in_a_shell_command_says_so(launch: Launch) -> None:
    launch.run("cd . && Rscript-not-installed-here R/model.R")
    log = launch.log().decode()
    assert "Rscript-not-installed-here" in log  # the shell's own message
    assert "flank: exit 127: a command was not found" in log
    assert launch.result()["exit_code"] == 127


def test_not_executable_says_so(launch: Launch) -> None:
    (launch.cwd / "run.sh").write_text("#!/bin/sh\necho hi\n")
    launch.run("./run.sh")
    assert launch.result()["exit_code"] == 126
    assert "flank: exit 126: ./run.sh is not executable" in launch.log().decode()


def test_missing_directory_fails_with_a_message(launch: Launch, tmp_path: Path) -> None:
    spec = TaskSpec(task="t", command="true", cwd=str(tmp_path / "nope"))
    (tmp_path / "t.spec").write_bytes(encode_spec(spec))
    proc = subprocess.run([*launch.argv, str(tmp_path / "t.spec"), str(launch.run_dir)])
    assert proc.returncode != 0
    assert "flank: cannot enter the task's directory" in launch.log().decode()


def test_secrets_are_masked_even_across_split_writes(launch: Launch) -> None:
    env = {
        "DB_PASSWORD": "secret",
        "API_KEY": "k3y-with-more",
        "SHORT": "ab",
        "FLANK_SECRET_NAMES": "DB_PASSWORD,API_KEY,SHORT",
    }
    command = (
        "printf 'sec'; sleep 0.05; printf 'ret and '; printf '%s\\n' \"$API_KEY\" >&2; "
        "printf 'k3y-'; sleep 0.05; printf 'with-more ab '; echo $DB_PASSWORD"
    )
    proc = launch.run(command, environ=env)
    assert proc.returncode == 0
    assert launch.log() == b"*** and ***\n*** *** ***\n"  # a short value is masked too (one rule)


def test_non_utf8_and_no_final_newline_pass_through(launch: Launch) -> None:
    launch.run("printf 'caf\\351 \\377\\376 end'")
    assert launch.log() == b"caf\xe9 \xff\xfe end"
    launch.run(
        "printf 'caf\\351 \\377\\376 secret end'",
        task="masked",
        environ={"TOKEN": "secret", "FLANK_SECRET_NAMES": "TOKEN"},
    )
    assert launch.log("masked") == b"caf\xe9 \xff\xfe *** end"


def test_large_output_streams_to_the_log(launch: Launch) -> None:
    # 20 MB through the masking pipe: everything arrives, in order
    launch.run(
        "yes 0123456789abcdefghi | head -c 20000000", environ={"TOKEN": "zzz-never", "FLANK_SECRET_NAMES": "TOKEN"}
    )
    assert (launch.run_dir / "logs" / "t.log").stat().st_size == 20_000_000


def test_running_record_while_the_task_runs(launch: Launch) -> None:
    proc = subprocess.Popen([*launch.argv, str(launch.spec("echo go; sleep 300", retries=2)), str(launch.run_dir)])
    try:
        wait_for(
            lambda: (launch.run_dir / "logs" / "t.log").exists() and launch.log() == b"go\n",
            "the task to start",
            timeout=10.0,
        )
        result = launch.result()
        assert (result["status"], result["attempt"]) == ("running", 1)
        assert "started_at" in result
        # make passes a stop (SIGTERM, or Ctrl-C's SIGINT) to its jobs: the task must end too
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert launch.result()["status"] == "running"  # the runner marks it interrupted; no retry happened
    assert "flank: stopped (signal 15)" in launch.log().decode()
    assert b"flank: attempt 2" not in launch.log()


def test_stop_ends_the_task_process_tree(launch: Launch) -> None:
    proc = subprocess.Popen([*launch.argv, str(launch.spec(PROCESS_TREE)), str(launch.run_dir)])
    try:
        wait_for(
            lambda: (launch.run_dir / "logs" / "t.log").exists() and b"started" in launch.log(),
            "the process tree to start",
            timeout=10.0,
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in _tree_pids(launch.cwd):
        wait_for(lambda: process_gone(pid), f"process {pid} to be gone", timeout=10.0)


def test_a_spec_is_read_from_its_plans_one_file_of_specs(launch: Launch, tmp_path: Path) -> None:
    """issue 22: a plan's specs are one file; `<file>/<name>` is a task's, as a path into a folder.
    1,000 of them: an index longer than a launcher's first read, the entry read on its own."""
    names = ["first", *(f"filler{i}" for i in range(1000)), "last"]
    specs = {
        f"{name}.spec": encode_spec(
            TaskSpec(task=name, command=f"echo {name} $V", cwd=str(launch.cwd), env=(("V", name),))
        )
        for name in names
    }
    (tmp_path / "p.tasks").write_bytes(encode_specs_file(specs))
    for name in ("first", "last"):
        proc = subprocess.run([*launch.argv, str(tmp_path / "p.tasks" / f"{name}.spec"), str(launch.run_dir)])
        assert proc.returncode == 0
        assert launch.log(name) == f"{name} {name}\n".encode()
        assert launch.result(name)["status"] == "success"
    assert sorted(p.name for p in (launch.run_dir / "tasks").iterdir()) == ["first.json", "last.json"]


def test_a_spec_its_file_of_specs_lacks_is_one_clear_line(launcher_argv: list[str], tmp_path: Path) -> None:
    (tmp_path / "p.tasks").write_bytes(
        encode_specs_file({"a.spec": encode_spec(TaskSpec(task="a", command="true", cwd="/"))})
    )
    proc = subprocess.run(
        [*launcher_argv, str(tmp_path / "p.tasks" / "gone.spec"), str(tmp_path / "run")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert f"{tmp_path / 'p.tasks'} has no entry gone.spec (regenerate it with a push)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_a_large_file_of_specs_is_read_past_its_first_read(tmp_path: Path) -> None:
    names = [f"task{i}.spec" for i in range(3000)]  # an index longer than the first read
    specs = {
        name: encode_spec(TaskSpec(task=name[:-5], command="x" * (i % 50), cwd="/")) for i, name in enumerate(names)
    }
    (tmp_path / "p.tasks").write_bytes(encode_specs_file(specs))
    assert specs_file_names(str(tmp_path / "p.tasks")) == names
    for name in (names[0], names[1500], names[-1]):
        assert read_spec_bytes(str(tmp_path / "p.tasks" / name)) == specs[name]


def test_a_task_started_again_in_its_run_folder_replaces_its_result_whole(launch: Launch) -> None:
    """A task started again in its run folder (make by hand, a resumed run) replaces its old result
    whole, in place: no temp file, nothing of the old record left."""
    assert launch.run("exit 3").returncode == 3
    assert launch.result()["status"] == "failed"
    assert launch.run("true").returncode == 0
    assert (launch.result()["status"], launch.result()["exit_code"]) == ("success", 0)
    assert sorted(p.name for p in (launch.run_dir / "tasks").iterdir()) == ["t.json"]  # no temp file left


def test_a_task_whose_log_cannot_be_written_fails_and_says_why(launch: Launch) -> None:
    """Its output is not all kept (a full disk: /dev/full stands for one): the task fails, once, with
    the reason in its result, and make skips its dependents. The command itself exited 0."""
    (launch.run_dir / "logs").mkdir(parents=True)
    (launch.run_dir / "tasks").mkdir()
    (launch.run_dir / "logs" / "t.log").symlink_to("/dev/full")
    proc = launch.run("echo one; echo two", argv=(), retries=2, retry_delay_s=0)
    assert proc.returncode == 1
    result = launch.result()
    assert (result["status"], result["attempts"], result["exit_code"]) == ("failed", 1, 0)
    assert result["error"] == "could not write its log: No space left on device"


RUNNING_KEYS = {"task", "status", "attempt", "started_at", "pid"}


def test_a_reader_never_sees_two_results_mixed(launch: Launch) -> None:
    """The result is rewritten in place at every attempt (issue 22: no temp file): whatever a reader
    reads meanwhile that parses is a whole record the launcher wrote, never one record's start with
    another's end (a "failed" head on a "running" tail would parse)."""
    path = launch.run_dir / "tasks" / "t.json"
    spec = launch.spec("exit 3", retries=100, retry_delay_s=0)
    proc = subprocess.Popen([*launch.argv, str(spec), str(launch.run_dir)], stdout=subprocess.DEVNULL)
    seen: list[dict] = []
    try:
        while proc.poll() is None:
            try:
                seen.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue  # not there yet, or caught between emptying and writing: not a record
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.wait() == 3
    seen.append(launch.result())
    final = launch.result()
    assert (final["status"], final["attempts"], final["exit_code"]) == ("failed", 101, 3)
    for record in seen:
        assert record == final or (set(record) == RUNNING_KEYS and record["status"] == "running"), record
    assert len({r.get("attempt") for r in seen if r["status"] == "running"}) > 1  # it read while it wrote


def test_unreadable_spec_is_one_clear_line(launcher_argv: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [*launcher_argv, str(tmp_path / "missing.spec"), str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "cannot read the task spec" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- logs/<task>.log.times: when attempts and lines began ------------------------------


@pytest.mark.slow
def test_times_mark_attempts_and_lines_at_offsets_of_the_stored_log(launch: Launch, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    # the secret changes the log's length: offsets are those of the stored (masked) log
    command = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
        f'echo "try $n $TOKEN"; sleep 0.3; echo "try $n later"; printf "partial "; sleep 0.3; '
        f'echo "line"; [ $n -ge 2 ]'
    )
    before_ms = time.time_ns() // 1_000_000
    proc = launch.run(
        command, argv=(), retries=1, retry_delay_s=0.1, environ={"TOKEN": "s3cr3t-value", "FLANK_SECRET_NAMES": "TOKEN"}
    )
    after_ms = time.time_ns() // 1_000_000
    assert proc.returncode == 0, proc.stderr
    log = launch.log()
    assert b"s3cr3t" not in log
    entries = launch.times()
    attempts = [e for e in entries if e[0] == "attempt"]
    ends = [e for e in entries if e[0] == "end"]
    lines = [e for e in entries if e[0] not in ("attempt", "end")]
    assert [(e[1], e[4], e[5]) for e in ends] == [("1", "1", "failed"), ("2", "0", "success")]
    assert [e[1] for e in attempts] == ["1", "2"]
    a1, e1, a2, e2 = int(attempts[0][2]), int(ends[0][2]), int(attempts[1][2]), int(ends[1][2])
    assert log[a1:e1] == b"try 1 ***\ntry 1 later\npartial line\n"
    assert log[e1:a2] == b"flank: attempt 2 of 2 after 0.1s\n"
    assert log[a2:e2] == b"try 2 ***\ntry 2 later\npartial line\n" and e2 == len(log)
    # the lines printed after a pause have their own entry, at their first byte
    line_offsets = [int(e[0]) for e in lines]
    for text in (b"try 1 later", b"try 2 later"):
        assert log.index(text) in line_offsets
    assert all(offset == 0 or log[offset - 1 : offset] == b"\n" for offset in line_offsets)
    stamps = [int(e[3] if e[0] in ("attempt", "end") else e[1]) for e in entries]
    assert stamps == sorted(stamps) and before_ms <= stamps[0] and stamps[-1] <= after_ms
    offsets = [int(e[2] if e[0] in ("attempt", "end") else e[0]) for e in entries]
    assert offsets == sorted(offsets)


def test_times_come_once_the_log_has_output_or_a_second_attempt(launch: Launch) -> None:
    """Issue 22: a file less per silent task. One attempt and no output: the result alone says it all,
    no times file. Output after a silent start, or a second attempt: the times, the held first entry
    included, as if the file had been there from the start."""
    times = launch.run_dir / "logs"
    assert launch.run("true", task="silent").returncode == 0
    assert launch.result("silent")["status"] == "success" and launch.log("silent") == b""
    assert not (times / "silent.log.times").exists()

    assert launch.run("sleep 0.2; echo late", argv=(), task="late").returncode == 0
    entries = launch.times("late")
    assert [e[:3] for e in entries if e[0] in ("attempt", "end")] == [["attempt", "1", "0"], ["end", "1", "5"]]
    assert entries[0][0] == "attempt" and entries[-1][0] == "end"

    assert launch.run("exit 1", task="twice", retries=1, retry_delay_s=0).returncode == 1
    assert [e[:2] for e in launch.times("twice") if e[0] in ("attempt", "end")] == [
        ["attempt", "1"],
        ["end", "1"],
        ["attempt", "2"],
        ["end", "2"],
    ]


@pytest.mark.slow
def test_times_end_a_timed_out_and_a_stopped_attempt(launch: Launch) -> None:
    launch.run("echo started; sleep 30", timeout_s=0.5, task="slow")
    end = launch.times("slow")[-1]
    assert (end[0], end[1], end[2], end[5]) == ("end", "1", str(len(launch.log("slow"))), "timed_out")
    proc = subprocess.Popen([*launch.argv, str(launch.spec("echo go; sleep 300", task="stopped")), str(launch.run_dir)])
    try:
        wait_for(
            lambda: (launch.run_dir / "logs" / "stopped.log").exists() and launch.log("stopped") == b"go\n",
            "the task to start",
            timeout=10.0,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [e[0] for e in launch.times("stopped")] == ["attempt", "end"]
    assert launch.times("stopped")[-1][5] == "interrupted"


# --- building the launcher ---------------------------------------------------------


@pytest.mark.slow
def test_launcher_is_compiled_once_into_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = launcher.task_launcher_argv()
    assert len(first) == 1 and first[0].startswith(str(tmp_path / "cache" / "flank" / "bin" / "flank-task-"))
    built = Path(first[0]).stat().st_mtime_ns
    assert launcher.task_launcher_argv() == first
    assert Path(first[0]).stat().st_mtime_ns == built


@pytest.mark.slow
def test_with_musl_the_launcher_is_built_without_glibcs_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """issue 22: glibc's start-up asks the CPU its cache sizes (~70 CPUID traps on a VM, ~0.55 ms a task);
    musl's asks nothing. A binary of its own name: installing musl-tools later builds it again."""
    if shutil.which("musl-gcc") is None:
        pytest.skip("musl-gcc is not installed (apt-get install musl-tools)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    [binary] = launcher.task_launcher_argv()
    assert Path(binary).name.startswith("flank-task-musl-")
    assert b"GLIBC_TUNABLES" not in Path(binary).read_bytes()  # no glibc in it
    spec = TaskSpec(task="t", command="echo musl", cwd=str(tmp_path), argv=("echo", "musl"))
    (tmp_path / "t.spec").write_bytes(encode_spec(spec))
    assert subprocess.run([binary, str(tmp_path / "t.spec"), str(tmp_path / "run")]).returncode == 0
    assert (tmp_path / "run" / "logs" / "t.log").read_text() == "musl\n"


def test_without_a_compiler_the_python_launcher_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine with no cc, gcc or clang
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # and no launcher built before
    assert launcher.task_launcher_argv() == [sys.executable, "-m", "flank_ops", "_task"]


@pytest.mark.slow
def test_cpu_time_is_recorded_apart_from_wall_time(launch: Launch) -> None:
    # one CPU-bound task, one that only waits: the record tells them apart (the resources report uses it)
    launch.run(f'{sys.executable} -c "x = 0\nfor i in range(3_000_000): x += i"', task="busy")
    launch.run("sleep 0.5", task="idle")
    busy, idle = launch.result("busy"), launch.result("idle")
    assert busy["status"] == "success" and idle["status"] == "success"
    assert busy["cpu_s"] > 0.05
    assert idle["cpu_s"] < idle["duration_s"] / 2
