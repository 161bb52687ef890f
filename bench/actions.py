"""The site's Run button against `flank run` from a shell, and what live viewers cost (issue 23).

    python bench/actions.py [--rounds 5] [--viewers 100] [--skip-viewers]

1. Time from the click's POST /api/run (flank serve --actions, signed in) to the first task's start
   (its started_at in the run record), against the same from `flank run PROJECT PIPELINE` and
   `flank run ... --detach` typed in a shell; the contenders alternate in every round.
2. A CPU-bound run of a few tasks, with no viewer and with N live viewers of its page (each an
   open /api/events/run stream, as N browsers keep): the run's duration (record), its ratio, and the
   CPU time `flank serve` used meanwhile (/proc/<pid>/stat).

Everything runs on 127.0.0.1 in a temp FLANK_HOME. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from push import bench_env, sh  # noqa: E402 - the push bench's helpers

from helpers.cli import wait_for_site_draws  # noqa: E402
from helpers.ports import free_port  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password"
WORK = "python3 -c 'sum(i*i for i in range(4_000_000))'"  # about a second of CPU
YML = f"""pipelines:
  quick:
    tasks:
      first: 'true'
  work:
    tasks:
      a: "{WORK}"
      b: {{run: "{WORK}", needs: [a]}}
      c: {{run: "{WORK}", needs: [b]}}
      d: {{run: "{WORK}", needs: [c]}}
"""


def flank(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "flank_ops", *args], env=env, input=stdin, text=True, capture_output=True
    )
    if proc.returncode != 0:
        sys.exit(f"flank {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def run_record(home: Path, pipeline: str, run_id: int) -> dict:
    return json.loads((home / "demo" / "runs" / pipeline / str(run_id) / "run.json").read_text())


def wait_record(home: Path, pipeline: str, run_id: int, check: str) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            record = run_record(home, pipeline, run_id)
        except (OSError, ValueError):
            record = {}
        if check == "started" and (record.get("tasks", {}).get("first") or {}).get("started_at"):
            return record
        if check == "ended" and record.get("status") not in (None, "running"):
            return record
        if check == "after_run" and record.get("after_run"):
            return record
        time.sleep(0.02)
    sys.exit(f"{pipeline} #{run_id} never got {check}")


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class Api:
    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def call(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": f"127.0.0.1:{self.port}", "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            headers |= {"Origin": f"http://127.0.0.1:{self.port}", "Content-Type": "application/x-www-form-urlencoded"}
            body = urllib.parse.urlencode(form)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        for raw in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = raw.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        conn.close()
        return response.status, text

    def sign_in(self) -> None:
        _, page = self.call("GET", "/api/login")
        token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
        self.call("POST", "/api/login", {"token": token, "user": "ada", "password": PASSWORD, "next": "/"})
        self.csrf = json.loads(self.call("GET", "/api/session")[1])["csrf"]

    def run(self, pipeline: str) -> int:
        status, text = self.call(
            "POST",
            "/api/run",
            {"project": "demo", "pipeline": pipeline, "idem": os.urandom(8).hex(), "csrf": self.csrf},
        )
        if status != 200:
            sys.exit(f"POST /api/run: {status} {text}")
        return int(json.loads(text)["message"].split("#", 1)[1].split()[0])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def viewers(port: int, run_id: int, count: int) -> list[socket.socket]:
    out = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        path = f"/api/events/run?project=demo&pipeline=work&run={run_id}"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        out.append(sock)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--skip-viewers", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flank-bench-actions-") as tmp_name:
        tmp = Path(tmp_name)
        env = bench_env(tmp)
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["FLANK_SERVE_QUIET"] = "1"
        home = Path(env["FLANK_HOME"])
        home.mkdir(parents=True)
        (home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
        flank("init", "demo", env=env)
        clone = tmp / "clone"
        clone.mkdir()
        (clone / "flank.yml").write_text(YML)
        sh("git", "init", "-q", "-b", "main", cwd=clone, env=env)
        sh("git", "add", ".", cwd=clone, env=env)
        sh("git", "commit", "-qm", "bench", cwd=clone, env=env)
        sh("git", "push", "-q", str(home / "demo.git"), "main", cwd=clone, env=env)
        flank("users", "add", "ada", "--project", "demo", env=env, stdin=PASSWORD + "\n")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "flank_ops", "serve", "--actions", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit("flank serve did not start")
                    time.sleep(0.05)
            api = Api(port)
            api.sign_in()
            next_id = 1
            times: dict[str, list[float]] = {"web (POST /api/run)": [], "flank run": [], "flank run --detach": []}
            for _ in range(args.rounds):
                for name in times:
                    t0 = time.time()
                    if name.startswith("web"):
                        run_id = api.run("quick")
                    else:
                        argv = [sys.executable, "-m", "flank_ops", "run", "demo", "quick"]
                        if name.endswith("--detach"):
                            argv.append("--detach")
                        subprocess.run(argv, env=env, capture_output=True, check=True)
                        run_id = next_id
                    record = wait_record(home, "quick", run_id, "started")
                    times[name].append(ts(record["tasks"]["first"]["started_at"]) - t0)
                    wait_record(home, "quick", run_id, "ended")
                    next_id = run_id + 1
            base = statistics.median(times["flank run"])
            print(f"click to first task start, median of {args.rounds} (ratio to `flank run`):")
            for name, values in times.items():
                median = statistics.median(values)
                print(f"  {name:<22} {median * 1000:7.0f} ms   {median / base:5.2f}x")
            if args.skip_viewers:
                return
            print(f"\na CPU-bound run of 4 tasks, with 0 and {args.viewers} live viewers of its page:")
            durations: dict[int, list[float]] = {0: [], args.viewers: []}
            server_cpu: dict[int, list[float]] = {0: [], args.viewers: []}
            for _ in range(max(1, args.rounds // 2)):
                for count in durations:
                    before = cpu_s(server.pid)
                    run_id = api.run("work")
                    socks = viewers(port, run_id, count)
                    record = wait_record(home, "work", run_id, "ended")
                    server_cpu[count].append(cpu_s(server.pid) - before)
                    for sock in socks:
                        sock.close()
                    durations[count].append(record["duration_s"])
            zero = statistics.median(durations[0])
            for count, values in durations.items():
                median = statistics.median(values)
                cpu = statistics.median(server_cpu[count])
                print(
                    f"  {count:>4} viewers   run {median:6.2f} s   {median / zero:5.3f}x   flank serve CPU {cpu:5.2f} s"
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
            wait_after_runs(home)  # nothing may still write in the folder about to be removed


def wait_after_runs(home: Path) -> None:
    """Until every run's after-run steps are done (its git note, its record's after_run, its detached
    final draw): a run's record says it ended before these, and they write in the bench's folder."""
    for run_json in sorted((home / "demo" / "runs").glob("*/*/run.json")):
        wait_record(home, run_json.parent.parent.name, int(run_json.parent.name), "after_run")
    wait_for_site_draws(home)


if __name__ == "__main__":
    main()
