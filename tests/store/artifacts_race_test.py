"""The "no symlink out of the run" rule does not lose a race (issue 20 item 4): while another process
of the owner swaps a folder of the release with a symlink to the project folder (renameat2
RENAME_EXCHANGE, as fast as it can), keeping the folder's files 200 times never keeps an outside one
(before the fix about 1 try in 3 kept some), and keeping never fails for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops.config.model import Task
from flank_ops.store import artifacts

TRIES = 200
SWAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = (os.fsencode(p) for p in sys.argv[1:3])
parent = os.getppid()
for i in range(50_000_000):  # bounded; the test kills it long before
    if libc.renameat2(-100, a, -100, b, 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
        sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
    if i % 1000 == 0 and os.getppid() != parent:
        break
"""


@pytest.mark.slow
def test_a_folder_swapped_with_a_symlink_never_lets_an_outside_file_be_kept(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "secrets.env").write_text("API_KEY=outside\n")
    release, persist = tmp_path / "release", tmp_path / "persist"
    (release / "out" / "rd").mkdir(parents=True)
    persist.mkdir()
    (release / "out" / "rd" / "secrets.env").write_text("inside\n")
    for k in range(30):  # files kept one after the other: many instants for the swap to land
        (release / "out" / "rd" / f"f{k:02}.csv").write_text("inside\n")
        (project / f"f{k:02}.csv").write_text("API_KEY=outside\n")
    (release / "out" / "swap").symlink_to(project)
    task = Task(name="t", run="true", artifacts=("out/rd",))
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, release / "out" / "rd", release / "out" / "swap"])
    kept_inside = 0
    try:
        for i in range(1, TRIES + 1):
            run_dir = tmp_path / "runs" / str(i)
            entries, _ = artifacts.keep_task(run_dir, i, "t", task, release, persist, artifacts.Budget(1 << 30, 0))
            assert swapper.poll() is None, "the swapper stopped"
            for entry in entries:
                if entry["kept"]:
                    content = (run_dir / "artifacts" / "t" / entry["path"]).read_text()
                    assert content == "inside\n", f"try {i} kept the project's {entry['path']}"
                    kept_inside += 1
    finally:
        swapper.kill()
        swapper.wait()
    assert kept_inside > 0  # the folder's own file is still kept when it is there
