"""issue 13: what `flank doctor` says about environments: the R and Python on this VM, and, for each
deployed project with renv.lock, whether Rscript loads the packages it names (a report; no install);
what setup's builds take on disk (issue 28 item 8)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flank_ops.paths import Home

CHECK_TIMEOUT_S = 120.0


def setup_checks(home: Home, check: Any) -> Iterator[Any]:
    """doctor's Check lines (`check` is its Check type: status, name, detail, fix)."""
    steps: list[tuple[str, Any]] = [("R", lambda: r_version(check)), ("Python", lambda: python_version(check))]
    for project in home.projects():
        steps += [
            (f"{project} renv.lock", lambda project=project: renv_packages_check(home, project, check)),
            (f"{project} Python", lambda project=project: python_requirements_check(home, project, check)),
            (f"{project} setup", lambda project=project: setup_disk_check(home, project, check)),
        ]
    for name, step in steps:
        try:
            found = step()
        except Exception as exc:  # noqa: BLE001 - doctor reports everything it finds
            found = check("FAIL", name, f"{type(exc).__name__}: {exc}")
        if found is not None:
            yield found


def r_version(check: Any) -> Any:
    exe = shutil.which("Rscript")
    if exe is None:
        return check(
            "SKIP",
            "R",
            "Rscript is not installed (needed only by R tasks and setup:)",
            "install R: sudo apt-get install r-base-core",
        )
    proc = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    return check("OK", "R", (proc.stdout.strip().splitlines() or ["Rscript"])[0])


def python_version(check: Any) -> Any:
    exe = shutil.which("python3")
    flank = f"flank runs on Python {sys.version.split()[0]}"
    if exe is None:
        return check("OK", "Python", f"no python3 on PATH for tasks; {flank}")
    proc = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    return check("OK", "Python", f"{proc.stdout.strip()} ({exe}) for tasks; {flank}")


def renv_packages(lock: Path) -> list[str] | None:
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    packages = data.get("Packages") if isinstance(data, dict) else None
    return sorted(str(p) for p in packages) if isinstance(packages, dict) else None


def renv_packages_check(home: Home, name: str, check: Any) -> Any | None:
    """For a deployed release with renv.lock: which of its packages Rscript cannot load there,
    with the environment tasks get (None: no such release)."""
    paths = home.project(name)
    sha = paths.current_sha()
    if sha is None:
        return None
    release = paths.release_dir(sha)
    packages = renv_packages(release / "renv.lock")
    label = f"{name} renv.lock"
    if packages is None:
        if (release / "renv.lock").exists():
            return check(
                "FAIL",
                label,
                "renv.lock is not valid JSON with a Packages section",
                "regenerate it in your project: renv::snapshot()",
            )
        return None
    if not packages:
        return check("OK", label, "names no packages")
    exe = shutil.which("Rscript")
    if exe is None:
        return check(
            "FAIL",
            label,
            f"names {len(packages)} packages but R is not installed",
            "install R: sudo apt-get install r-base-core",
        )
    from flank_ops.deploy.setup import setup_env
    from flank_ops.git.release_config import load_release_config

    env = setup_env(paths, release, load_release_config(paths, sha), sha)
    script = (
        "pk <- strsplit(Sys.getenv('FLANK_DOCTOR_PACKAGES'), ',')[[1]]; "
        "ok <- vapply(pk, function(p) suppressWarnings(suppressMessages(requireNamespace(p, quietly = TRUE))), "
        "logical(1)); cat(pk[!ok], sep = '\\n')"
    )
    env["FLANK_DOCTOR_PACKAGES"] = ",".join(packages)
    proc = subprocess.run(
        [exe, "-e", script],
        cwd=release,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
    )
    if proc.returncode != 0:
        return check("FAIL", label, f"Rscript failed in the release: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    missing = [p for p in proc.stdout.split() if p]
    if not missing:
        return check("OK", label, f"all {len(packages)} packages load in {sha[:7]}")
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return check(
        "FAIL",
        label,
        f"Rscript cannot load {len(missing)} of {len(packages)} packages in {sha[:7]}: {shown}",
        "install them at deploy: add setup: {run: \"Rscript -e 'renv::restore(prompt = FALSE)'\", "
        "key: [renv.lock]} to flank.yml and push (or push -o setup=force)",
    )


def setup_disk_check(home: Home, name: str, check: Any) -> Any | None:
    """issue 28 item 8: what setup's builds take on disk; WARN above a share of the disk."""
    from flank_ops.cost.setup_disk import WARN_SHARE, setup_disk
    from flank_ops.humanize import fmt_bytes

    use = setup_disk(home.project(name))
    if use is None:
        return None
    detail = (
        f"{use.builds} build{'s take' if use.builds != 1 else ' takes'} {fmt_bytes(use.bytes)} "
        f"({100 * use.share:.0f}% of the disk)"
    )
    if use.too_big:
        return check(
            "WARN",
            f"{name} setup",
            f"{detail}, more than {100 * WARN_SHARE:.0f}%",
            "each deploy and `flank prune` remove the builds no kept release uses; what is left is the "
            "environments of the last releases (fewer packages, or a bigger disk)",
        )
    return check("OK", f"{name} setup", detail)


VENV_DIRS = (".venv", "venv")
REQUIREMENT_RE = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^,;\s]+)\s*)?(?:[;,<>=!~].*)?$"
)
_PROBE = """
import importlib.metadata as m, json, sys
found = {}
for name in json.loads(sys.argv[1]):
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        found[name] = None
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "found": found}))
"""


def requirements(text: str) -> list[tuple[str, str | None]]:
    """(name, the version pinned with ==, if any) of each requirement line; options (-r, -e, --index-url),
    URLs and paths are left out (they name no package doctor can look up)."""
    found = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")) or "://" in line or line.startswith((".", "/")):
            continue
        match = REQUIREMENT_RE.match(line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def python_requirements_check(home: Home, name: str, check: Any) -> Any | None:
    """issue 28 item 9, as renv_packages_check for R: for a deployed release with requirements.txt,
    are its packages installed for the Python its tasks get (the release's .venv, else python3), at
    the pinned versions, and is that Python the one .python-version asks for (None: nothing to check)."""
    paths = home.project(name)
    sha = paths.current_sha()
    if sha is None:
        return None
    release = paths.release_dir(sha)
    try:
        wanted = requirements((release / "requirements.txt").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    label = f"{name} Python"
    venv = next((d for d in VENV_DIRS if (release / d / "bin" / "python").exists()), None)
    exe = str(release / venv / "bin" / "python") if venv else shutil.which("python3")
    where = f"{venv} in {sha[:7]}" if venv else "python3 (no .venv in the release)"
    fix_setup = "install them at deploy: add setup: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
    if exe is None:
        return check("FAIL", label, "requirements.txt but no Python for tasks", fix_setup)
    proc = subprocess.run(
        [exe, "-c", _PROBE, json.dumps([n for n, _ in wanted])],
        cwd=release,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
    )
    try:
        probe = json.loads(proc.stdout)
    except ValueError:
        return check("FAIL", label, f"{exe} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    problems = []
    try:
        pinned_python = (release / ".python-version").read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        pinned_python = ""
    if pinned_python and not (probe["python"] + ".").startswith(pinned_python.rstrip(".") + "."):
        problems.append(f".python-version asks for Python {pinned_python}, {where} is Python {probe['python']}")
    missing = [n for n, _ in wanted if probe["found"].get(n) is None]
    other = [f"{n}=={v} (has {probe['found'][n]})" for n, v in wanted if v and probe["found"].get(n) not in (None, v)]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        problems.append(f"{len(missing)} of {len(wanted)} requirements not installed: {shown}")
    if other:
        problems.append(f"other versions installed: {', '.join(other[:10])}")
    if not problems:
        return check(
            "OK",
            label,
            f"Python {probe['python']} ({where}) has the {len(wanted)} requirement{'s' if len(wanted) != 1 else ''} "
            "of requirements.txt",
        )
    return check(
        "FAIL",
        label,
        f"{where}, Python {probe['python']}: " + "; ".join(problems),
        (fix_setup if not venv else "push again with -o setup=force to rebuild the venv, or fix requirements.txt"),
    )
