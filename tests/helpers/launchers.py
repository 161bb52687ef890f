"""Both task launchers (compiled task_exec.c and task_exec.py) driven as make drives them:
`LAUNCHER SPEC_FILE RUN_DIR`. The `launcher_argv` fixture runs a test once per launcher (the C one needs
tests/run/conftest.py's `built_launcher`); `launch` gives a Launch in the test's tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flank_ops.run.makefile import direct_argv
from flank_ops.task import launcher
from flank_ops.task.task_exec import TaskSpec, encode_spec


@pytest.fixture(params=["c", "python"])
def launcher_argv(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    if request.param == "python":
        monkeypatch.setenv(launcher.IMPLEMENTATION_ENV, "python")
        return launcher.task_launcher_argv()
    built = request.getfixturevalue("built_launcher")
    target = launcher.compiled_launcher_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, target)
    monkeypatch.setenv(launcher.IMPLEMENTATION_ENV, "c")
    argv = launcher.task_launcher_argv()
    assert argv == [str(target)]
    return argv


class Launch:
    def __init__(self, launcher_argv: list[str], tmp_path: Path) -> None:
        self.argv = launcher_argv
        self.tmp = tmp_path
        self.run_dir = tmp_path / "run"
        self.cwd = tmp_path / "work"
        self.cwd.mkdir(exist_ok=True)

    def spec(self, command: str, task: str = "t", **fields) -> Path:
        fields.setdefault("argv", direct_argv(command))
        spec = TaskSpec(task=task, command=command, cwd=str(self.cwd), **fields)
        path = self.tmp / f"{task}.spec"
        path.write_bytes(encode_spec(spec))
        return path

    def run(
        self, command: str, task: str = "t", environ: dict[str, str] | None = None, **fields
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = dict(os.environ, **(environ or {}))
        return subprocess.run(
            [*self.argv, str(self.spec(command, task, **fields)), str(self.run_dir)],
            env=full_env,
            capture_output=True,
        )

    def result(self, task: str = "t") -> dict:
        return json.loads((self.run_dir / "tasks" / f"{task}.json").read_text())

    def log(self, task: str = "t") -> bytes:
        return (self.run_dir / "logs" / f"{task}.log").read_bytes()

    def times(self, task: str = "t") -> list[list[str]]:
        return [line.split(" ") for line in (self.run_dir / "logs" / f"{task}.log.times").read_text().splitlines()]


@pytest.fixture
def launch(launcher_argv: list[str], tmp_path: Path) -> Launch:
    return Launch(launcher_argv, tmp_path)
