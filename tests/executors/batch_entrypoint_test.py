"""flank's AWS Batch container entrypoint, run for real with /bin/sh (what a container would run).

The happy path (release and secrets fetched from S3 through presigned URLs) runs in batch_backend_test.py
inside moto's Batch jobs; here, what it says when it is started without flank or cannot fetch the release.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from flank_ops.executors.batch import ENTRYPOINT
from helpers.servers import refused_port


def run_entrypoint(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT)], env={**base, **env}, cwd=tmp_path, text=True, capture_output=True, timeout=60
    )


def test_started_without_flank_it_says_so(tmp_path: Path) -> None:
    done = run_entrypoint({}, tmp_path)
    assert done.returncode == 97
    assert done.stderr == (
        "flank entrypoint: FLANK_RELEASE_URL is not set: this container is meant to be started by flank\n"
    )


def test_a_release_it_cannot_fetch_fails_with_97_in_words(tmp_path: Path) -> None:
    with refused_port() as port:
        done = run_entrypoint(
            {
                "FLANK_RELEASE_URL": f"http://127.0.0.1:{port}/b/releases/p/abc.tar.gz?X=1",
                "FLANK_COMMAND": "echo never",
                "FLANK_COMMIT": "abc",
            },
            tmp_path,
        )
    assert done.returncode == 97
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1] == "flank entrypoint: could not download the release (commit abc) from S3"
