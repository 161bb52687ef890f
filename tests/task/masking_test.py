"""One masking rule on every path (issue 9, items 1-2).

The same table of secrets goes through every place a secret value could leave flank: the compiled
and the Python task launcher (streamed, split across writes, straddling buffer boundaries), the
record and note mask (`secrets.mask`), make.log (`mask_file`), the notification text, and a real
run (log, run.json, git note, webhook). The rule: every non-empty secret value is replaced by ***
wherever it appears, the longest one first where two start at the same byte.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops.task import secrets as secrets_module
from flank_ops.task.task_exec import SecretMasker
from helpers.cli import run_flank
from helpers.deployed import deploy, record, runs_dir
from helpers.launchers import Launch, launcher_argv  # noqa: F401 - the fixture: both launchers
from helpers.sample_runs import finished_run, make_project, notify_and_ping
from helpers.servers import http_recorder


def _pseudo_random(seed: str, size: int) -> str:
    out = ""
    while len(out) < size:
        seed = hashlib.sha256(seed.encode()).hexdigest()
        out += seed
    return out[:size]


SECRETS = {
    "ONE": "Q",  # one character: masked everywhere it appears
    "TWO": "zx",
    "SHORT": "k3y",
    "NESTED": "hunter2",
    "NESTED_LONG": "hunter2-extended",  # contains NESTED: masked whole
    "REGEX": r"^a.b*c+(d)?[e]{2}$|\1 %s %% $HOME `id` \n",
    "UNICODE": "pässwörd€ 鍵",
    "MULTI": "-----BEGIN KEY-----\nabc\r\ndef\n-----END KEY-----",
    "SEPARATORS": "a\x0bb\x0cc\u2028d\x85e\x1cf",  # line breaks for str.splitlines, not for a log
    "SPACES": "  padded value  ",
    "LONG": _pseudo_random("long", 5000),
    "HUGE": _pseudo_random("huge", 70_000),  # longer than a read of the launcher's pipe
}
# a secret straddles each: a page, the launcher's read size, further reads
BOUNDARIES = ((4096, "SHORT"), (65536, "MULTI"), (131072, "HUGE"), (196608, "LONG"))
FRAGMENT = 24  # no 24 consecutive characters of a long secret may show either


def _stream() -> tuple[list[bytes], bytes]:
    """The raw output as separate writes, each secret cut in two, and the output as masked by hand."""
    pieces: list[bytes] = []
    expected: list[bytes] = []
    size = 0

    def text(s: str) -> None:
        nonlocal size
        raw = s.encode()
        pieces.append(raw)
        expected.append(raw)
        size += len(raw)

    def secret(name: str) -> None:
        nonlocal size
        raw = SECRETS[name].encode()
        cut = len(raw) // 2
        pieces.extend([raw[:cut], raw[cut:]])  # split across two writes
        expected.append(b"***")
        size += len(raw)

    secret("NESTED")  # at the very start
    text(" ordinary text\n")
    for name in SECRETS:
        text(f"[{name}: ")
        secret(name)
        text("] and again: ")
        secret(name)
        text(" end\n")
    text("adjacent: ")
    for name in ("TWO", "SHORT", "ONE", "NESTED", "TWO"):
        secret(name)
    text("\n")
    for boundary, name in BOUNDARIES:
        value = SECRETS[name].encode()
        text("." * (boundary - size - len(value) // 2 - 1) + "\n")
        secret(name)  # straddles `boundary`
    text("\nlast line without a newline: ")
    secret("LONG")
    return pieces, b"".join(expected)


PIECES, EXPECTED = _stream()
RAW = b"".join(PIECES)


def assert_nothing_leaks(out: bytes | str) -> None:
    data = out.encode("utf-8", "surrogateescape") if isinstance(out, str) else out
    for name, value in SECRETS.items():
        raw = value.encode()
        assert raw not in data, f"{name} leaked"
        for at in range(0, max(0, len(raw) - FRAGMENT), 997):
            assert raw[at : at + FRAGMENT] not in data, f"a fragment of {name} leaked"


def test_the_table_is_masked_whole_by_the_record_and_note_mask() -> None:
    out = secrets_module.mask(RAW.decode(), SECRETS).encode()
    assert_nothing_leaks(out)
    assert out == EXPECTED


def test_the_table_is_masked_in_make_log(tmp_path: Path) -> None:
    path = tmp_path / "make.log"
    path.write_bytes(RAW)
    secrets_module.mask_file(path, SECRETS)
    assert path.read_bytes() == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096, 65536])
def test_the_streaming_mask_gives_the_same_output_whatever_the_writes(size: int) -> None:
    masker = SecretMasker([v.encode() for v in SECRETS.values()])
    out = b"".join(masker.feed(RAW[i : i + size]) for i in range(0, len(RAW), size)) + masker.feed(b"", final=True)
    assert out == EXPECTED


def test_the_streaming_mask_holds_back_only_what_may_start_a_secret() -> None:
    masker = SecretMasker([b"hunter2", b"Q"])
    assert masker.feed(b"ab hun") == b"ab "  # "hun" may be the start of hunter2
    assert masker.feed(b"gry Q") == b"hungry ***"  # it was not; Q is masked at once
    assert masker.feed(b"", final=True) == b""


WRITER = """\
import os, sys, time
pieces = [bytes.fromhex(h) for h in open(sys.argv[1]).read().split()]
targets = [int(t) for t in open(sys.argv[2]).read().split()]
log = sys.argv[3]
for piece, target in zip(pieces, targets):
    os.write(1, piece)
    deadline = time.monotonic() + 20
    # wait until the launcher has written all it may of this piece, so the next write is a separate read
    while os.path.getsize(log) < target:
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.001)
"""


def test_both_launchers_mask_the_table_split_across_writes_and_buffers(
    launcher_argv: list[str],  # noqa: F811
    tmp_path: Path,
) -> None:
    launch = Launch(launcher_argv, tmp_path)
    model = SecretMasker([v.encode() for v in SECRETS.values()])
    targets, written = [], 0
    for piece in PIECES:
        written += len(model.feed(piece))
        targets.append(written)
    (launch.cwd / "pieces").write_text(" ".join(p.hex() for p in PIECES))
    (launch.cwd / "targets").write_text(" ".join(map(str, targets)))
    (launch.cwd / "writer.py").write_text(WRITER)
    log = launch.run_dir / "logs" / "t.log"
    env = dict(SECRETS, FLANK_SECRET_NAMES=",".join(SECRETS))
    proc = launch.run(f"{sys.executable} writer.py pieces targets {log}", environ=env)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    out = launch.log()
    assert_nothing_leaks(out)
    assert out == EXPECTED


def test_a_thousand_secrets_are_all_masked(launcher_argv: list[str], tmp_path: Path) -> None:  # noqa: F811
    launch = Launch(launcher_argv, tmp_path)
    values = {f"S{i:04d}": _pseudo_random(f"s{i}", 8 + i % 40) for i in range(1000)}
    env = dict(values, FLANK_SECRET_NAMES=",".join(values))
    (launch.cwd / "out.txt").write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    proc = launch.run("cat out.txt", environ=env)
    assert proc.returncode == 0, proc.stderr
    assert launch.log().decode() == "".join(f"{name}=***\n" for name in values)


# --- the same rule everywhere: random overlapping secrets against a plain reference ------------


def _reference_mask(data: bytes, values: list[bytes]) -> bytes:
    """The rule, as plainly as it can be written: from the left, the longest value starting here."""
    out, i = bytearray(), 0
    while i < len(data):
        match = max((v for v in values if v and data.startswith(v, i)), key=len, default=b"")
        if match:
            out += b"***"
            i += len(match)
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def _random_cases(count: int) -> list[tuple[list[bytes], bytes]]:
    import random

    rng = random.Random(9)  # a small alphabet: values overlap, nest and repeat
    cases = []
    for _ in range(count):
        values = [bytes(rng.choice(b"ab\n") for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(1, 5))]
        data = bytes(rng.choice(b"abc\n") for _ in range(rng.randint(0, 300)))
        cases.append((values, data))
    return cases


RANDOM_CASES = _random_cases(40)


def test_masks_agree_with_the_plain_reference_on_overlapping_secrets() -> None:
    for values, data in RANDOM_CASES:
        expected = _reference_mask(data, values)
        assert secrets_module.mask(data.decode(), [v.decode() for v in values]).encode() == expected
        for size in (1, 2, 5):
            masker = SecretMasker(values)
            out = b"".join(masker.feed(data[i : i + size]) for i in range(0, len(data), size))
            assert out + masker.feed(b"", final=True) == expected, (values, data, size)


@pytest.mark.slow
def test_both_launchers_agree_with_the_plain_reference(launcher_argv: list[str], tmp_path: Path) -> None:  # noqa: F811
    launch = Launch(launcher_argv, tmp_path)
    for n, (values, data) in enumerate(RANDOM_CASES[:20]):
        names = [f"V{i}" for i in range(len(values))]
        (launch.cwd / f"out{n}").write_bytes(data)
        env = dict(zip(names, (v.decode() for v in values)), FLANK_SECRET_NAMES=",".join(names))
        assert launch.run(f"cat out{n}", task=f"case{n}", environ=env).returncode == 0
        assert launch.log(f"case{n}") == _reference_mask(data, values), (values, data)


# --- a real run: log, run.json, note, notification --------------------------------------


def test_notification_text_masks_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    with http_recorder() as hook:
        paths = make_project(settings_toml=f'[notify.webhook]\nurl = "{hook.url}/hook"\n')
        for name, value in SECRETS.items():
            secrets_module.set_secret(paths, name, value)
        lines = [f"{name}: {value} and {value}" for name, value in SECRETS.items() if name not in ("HUGE", "LONG")]
        log = "\n".join(lines) + f"\nLONG {SECRETS['LONG']}\n"
        rec = finished_run(paths, logs={"extract": "ok\n", "model": log})
        assert notify_and_ping(paths, rec) == "notify failure: webhook sent"
    text = hook.requests[0].json()["text"]
    assert_nothing_leaks(text)
    assert "TWO: *** and ***" in text and "LONG ***" in text


PIPELINE = """\
pipelines:
  nightly:
    notify: [failure]
    tasks:
      leak:
        run: python3 print_secrets.py
"""
PRINT_SECRETS = """\
import os, sys, time
names = os.environ["FLANK_SECRET_NAMES"].split(",")
for name in names:
    value = os.environb[name.encode()]
    half = len(value) // 2
    os.write(1, name.encode() + b"=" + value[:half])
    time.sleep(0.01)
    os.write(1, value[half:] + b"\\n")
sys.exit(1)
"""


@pytest.mark.slow
@pytest.mark.parametrize("implementation", ["c", "python"])
def test_a_real_run_keeps_every_secret_out_of_log_record_note_and_notification(
    tmp_path: Path, flank_home: Path, implementation: str
) -> None:
    deploy(tmp_path, PIPELINE, {"print_secrets.py": PRINT_SECRETS})
    for name, value in SECRETS.items():
        proc = run_flank("secrets", "set", "demo", name, input=value)
        assert proc.returncode == 0, proc.stderr
        # the warning says what the log below shows
        assert ("a value this short is masked everywhere it appears" in proc.stderr) == (len(value) < 4)
    with http_recorder() as hook:
        (flank_home / "flank.toml").write_text(f'[notify.webhook]\nurl = "{hook.url}/hook"\n')
        proc = run_flank("run", "demo", "nightly", env={"FLANK_TASK_EXEC": implementation})
    assert proc.returncode == 1, proc.stderr
    log = (runs_dir() / "1" / "logs" / "leak.log").read_bytes()
    assert log == b"".join(f"{name}=***\n".encode() for name in sorted(SECRETS))
    run_json = (runs_dir() / "1" / "run.json").read_text()
    note = subprocess.run(
        ["git", "--git-dir", str(flank_home / "demo.git"), "notes", "--ref=flank", "show", record(1)["commit"]["sha"]],
        text=True,
        stdout=subprocess.PIPE,
    ).stdout
    text = hook.requests[0].json()["text"]
    assert "nightly #1 failed" in note and "leak" in text
    for out in (log, json.loads(run_json), note, text, proc.stdout, proc.stderr):
        assert_nothing_leaks(out if isinstance(out, (str, bytes)) else json.dumps(out, ensure_ascii=False))
