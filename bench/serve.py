"""Does `flank serve` keep answering while many idle connections are open (Slowloris)?

Starts `flank serve` on 127.0.0.1 in a temp FLANK_HOME, opens N idle connections
(0, 500, 2000 by default; they connect and send nothing), then times normal GETs
of the home page, each on a new connection, and prints the median against N=0.

    python bench/serve.py [--counts 0,500,2000] [--gets 30] [--one-address] [--compare-stdlib]
                          [--server-files-limit 1024]

The idle connections come from 20 loopback addresses (127.0.0.2 ... 127.0.0.21),
so none exceeds the per-client cap and the server really holds them all; with
--one-address they all come from 127.0.0.1, the address the timed GETs use too
(as through an ssh tunnel), and the cap closes the oldest idle ones instead.
--compare-stdlib runs the same against `python -m http.server` (a thread per
connection, as flank serve was before) for reference. --server-files-limit N
starts the servers with an open-files limit of N (soft and hard), as on a VM
whose limit is the common 1024.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.ports import free_port  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
GET_TIMEOUT = 10.0


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("the server did not start listening")


def timed_get(port: int) -> float | None:
    start = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GET_TIMEOUT)
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status != 200:
            return None
    except OSError:
        return None
    return time.perf_counter() - start


def open_idle(port: int, count: int, one_address: bool) -> list[socket.socket]:
    socks = []
    for i in range(count):
        source = "127.0.0.1" if one_address else f"127.0.0.{2 + i % 20}"
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=GET_TIMEOUT, source_address=(source, 0)))
        except OSError as exc:
            print(f"  could open only {i} idle connections: {exc}")
            break
    return socks


def still_open(socks: list[socket.socket]) -> int:
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += s.recv(1) != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def measure(
    label: str,
    command: list[str],
    port: int,
    env: dict[str, str],
    counts: list[int],
    gets: int,
    one_address: bool,
    files_limit: int | None,
) -> None:
    def limit_files() -> None:
        if files_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files_limit, files_limit))

    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=limit_files
    )
    try:
        wait_listening(port, proc)
        print(f"{label}:")
        for _ in range(10):  # warm-up: imports, page cache
            timed_get(port)
        baseline = None
        for count in counts:
            idle = open_idle(port, count, one_address)
            times: list[float | None] = []
            for _ in range(gets):
                times.append(timed_get(port))
                if times[-3:] == [None, None, None]:
                    break  # starved: three GETs in a row unanswered, no need to wait for more
            answered = [t for t in times if t is not None]
            held = still_open(idle)
            for s in idle:
                s.close()
            if not answered:
                print(
                    f"  {count:5d} idle ({held:5d} still open): no GET answered within {GET_TIMEOUT:g} s "
                    f"({len(times)} tried)"
                )
                continue
            med = statistics.median(answered)
            baseline = baseline or med
            print(
                f"  {count:5d} idle ({held:5d} still open): GET median {med * 1000:7.2f} ms, "
                f"{len(answered)}/{len(times)} answered, ratio vs 0 idle {med / baseline:5.2f}"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="0,500,2000", help="numbers of idle connections, the first is the baseline")
    parser.add_argument("--gets", type=int, default=30, help="timed GETs per count")
    parser.add_argument("--one-address", action="store_true", help="idle connections from 127.0.0.1 too")
    parser.add_argument("--compare-stdlib", action="store_true", help="also measure python -m http.server")
    parser.add_argument("--server-files-limit", type=int, metavar="N", help="the servers' open-files limit")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    limit = raise_open_files_limit(max(counts) + 256)
    print(
        f"open-files limit of this process: {limit}; {os.cpu_count()} CPUs; "
        f"idle connections from {'127.0.0.1' if args.one_address else '20 loopback addresses'}; "
        f"servers' open-files limit: {args.server_files_limit or 'inherited'}"
    )

    with tempfile.TemporaryDirectory(prefix="flank-bench-serve-") as tmp_name:
        home = Path(tmp_name) / "home"
        env = dict(
            os.environ,
            FLANK_HOME=str(home),
            FLANK_SERVE_QUIET="1",
            PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        subprocess.run([sys.executable, "-m", "flank_ops", "site"], env=env, check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        measure(
            "flank serve",
            [sys.executable, "-m", "flank_ops", "serve", "--port", str(port)],
            port,
            env,
            counts,
            args.gets,
            args.one_address,
            args.server_files_limit,
        )
        if args.compare_stdlib:
            port = free_port()
            measure(
                "python -m http.server (a thread per connection, for reference)",
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(home / "site"),
                    str(port),
                ],
                port,
                env,
                counts,
                args.gets,
                args.one_address,
                args.server_files_limit,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
