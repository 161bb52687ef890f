"""A private one-node Slurm cluster on this machine, for tests and benches (issue 14).

    with SlurmCluster(tmp_dir) as cluster:
        cluster.env                  # {"SLURM_CONF": ...}: what sbatch/squeue/scancel need
        cluster.partition            # "flank" (the default partition)
        cluster.second_partition     # "flank_b": the same node, for per-task placement (issue 26)

Its own munged (own key, socket, pid, log and seed files; run as user munge, as
munged wants), slurmctld and slurmd (foreground, as root, SlurmUser=root) with a
generated slurm.conf on free ports of 127.0.0.1, state and spool folders in tmp_dir.
No system file is touched. Accounting is off (no slurmdbd): MaxRSS is not known.
Each daemon is stopped by its pid on exit. Two clusters can run at once (different
ports and folders), but the tests keep theirs in one xdist group to spare the CPUs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    from helpers.ports import free_port
except ModuleNotFoundError:  # run by hand (`python tests/helpers/slurm_cluster.py`): tests/helpers is on the path
    from ports import free_port  # type: ignore[no-redef]

PARTITION = "flank"
SECOND_PARTITION = "flank_b"
DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")


def slurm_available() -> str | None:
    """Why a private cluster cannot run here, or None when it can."""
    missing = [d for d in DAEMONS if not os.access(d, os.X_OK)]
    if missing or not shutil.which("sbatch"):
        return "Slurm and munge are not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "a private Slurm cluster needs root (slurmd runs jobs as their user)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "there is no munge user (apt-get install munge)"
    return None


def _memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


class SlurmCluster:
    def __init__(self, workdir: Path, *, cpus: int | None = None) -> None:
        self.dir = Path(workdir)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = max(256, _memory_mb() // 2)
        self.partition = PARTITION
        self.second_partition = SECOND_PARTITION
        self.procs: list[subprocess.Popen[bytes]] = []
        self.conf = self.dir / "slurm.conf"
        self.munge_dir: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def __enter__(self) -> SlurmCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        munge = pwd.getpwnam("munge")
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        # munged (as user munge) must reach its folder: one of its own under /tmp, not inside a 0700 temp dir
        munge_dir = Path(tempfile.mkdtemp(prefix="flank-munge-"))
        self.munge_dir = munge_dir
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        for path in (munge_dir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        socket_path = munge_dir / "munge.socket"
        self._spawn(
            [
                "/usr/sbin/munged",
                "-F",
                "--force",
                f"--key-file={key}",
                f"--socket={socket_path}",
                f"--pid-file={munge_dir / 'munged.pid'}",
                f"--log-file={munge_dir / 'munged.log'}",
                f"--seed-file={munge_dir / 'munged.seed'}",
            ],
            user=munge,
            log=munge_dir / "munged.out",
        )
        self._wait(lambda: socket_path.exists(), "munged", munge_dir / "munged.log")

        for sub in ("state", "spool", "log"):
            (self.dir / sub).mkdir()
        self.conf.write_text(self._slurm_conf(socket_path))
        # slurmd reads cgroup.conf only for cgroup plugins; an empty one keeps it from looking in /etc
        (self.dir / "cgroup.conf").write_text("")
        env = {**os.environ, **self.env}
        self._spawn(
            ["/usr/sbin/slurmctld", "-D", "-i", "-f", str(self.conf)], env=env, log=self.dir / "log" / "slurmctld.out"
        )
        self._spawn(["/usr/sbin/slurmd", "-D", "-f", str(self.conf)], env=env, log=self.dir / "log" / "slurmd.out")
        self._wait(self._node_ready, "slurmd", self.dir / "log" / "slurmd.log")

    def _slurm_conf(self, munge_socket: Path) -> str:
        d = self.dir
        return "\n".join(
            [
                "ClusterName=flanktest",
                f"SlurmctldHost={self.host}(127.0.0.1)",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"SlurmctldPort={free_port()}",
                f"SlurmdPort={free_port()}",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={munge_socket}",
                f"StateSaveLocation={d / 'state'}",
                f"SlurmdSpoolDir={d / 'spool'}",
                f"SlurmctldPidFile={d / 'slurmctld.pid'}",
                f"SlurmdPidFile={d / 'slurmd.pid'}",
                f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "JobAcctGatherType=jobacct_gather/linux",
                "JobAcctGatherFrequency=task=1",
                "JobAcctGatherParams=OverMemoryKill",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "MpiDefault=none",
                "ReturnToService=2",
                "KillWait=2",
                "InactiveLimit=0",
                "MinJobAge=300",
                "DefMemPerCPU=100",
                "SchedulerType=sched/builtin",
                f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
                f"PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
                f"PartitionName={SECOND_PARTITION} Nodes={self.host} Default=NO MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def _spawn(
        self, argv: list[str], *, log: Path, user: pwd.struct_passwd | None = None, env: dict[str, str] | None = None
    ) -> None:
        with open(log, "wb") as out:
            self.procs.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    user=user.pw_uid if user else None,
                    group=user.pw_gid if user else None,
                    start_new_session=True,
                )
            )

    def _node_ready(self) -> bool:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], env={**os.environ, **self.env}, capture_output=True, text=True
        )
        states = out.stdout.split()  # one line per partition the node is in
        return out.returncode == 0 and bool(states) and all(s in ("idle", "mixed", "allocated") for s in states)

    def _wait(self, ready: Callable[[], bool], what: str, log: Path, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                break
            time.sleep(0.2)
        text = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        raise RuntimeError(f"{what} did not start; its log:\n{text}")

    def stop(self) -> None:
        for proc in reversed(self.procs):  # slurmd, slurmctld, then munged
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        if self.munge_dir is not None:
            shutil.rmtree(self.munge_dir, ignore_errors=True)


if __name__ == "__main__":  # a cluster to try things by hand: prints SLURM_CONF, stops on Enter
    with SlurmCluster(Path(tempfile.mkdtemp(prefix="flank-slurm-"))) as c:
        print(f"export SLURM_CONF={c.conf}")
        input("Enter stops the cluster ")


def squeue_names(cluster: SlurmCluster) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%j"], env={**os.environ, **cluster.env}, capture_output=True, text=True, check=True
    )
    return out.stdout.split()
