"""issue 13: what `flank doctor` says about environments: the R and Python on this VM, and, for each
deployed project with renv.lock, whether Rscript loads the packages it names (a report; no install);
what setup's builds take on disk (issue 28 item 8)."""

from __future__ import annotations

import json
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
    from flank_ops.git.release_config import load_release_config
    from flank_ops.deploy.setup import setup_env

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
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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
