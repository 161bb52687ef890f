"""The top-level layout (issue 21 item 8): hooks/ and site_template/ beside flank_ops/, mapped into the package
at build time. flank finds them from a plain checkout (nothing installed) and from an installed wheel."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WANTED = [
    ("site_template", "run.html"),
    ("site_template", "style.css"),
    ("hooks", "pre-receive"),
    ("hooks", "post-receive"),
]

# Run with -S (no site-packages: neither the editable install's finder nor an installed flank_ops is visible).
RESOLVE = f"""
import sys
sys.path.insert(0, sys.argv[1])
import flank_ops
from flank_ops.package_data import package_folder
assert flank_ops.__file__.startswith(sys.argv[1]), flank_ops.__file__
for folder, name in {WANTED!r}:
    path = package_folder(folder) / name
    assert path.is_file(), path
    print(path)
from flank_ops.site.pages import template_dir
from flank_ops.git.bare_repo import hook_shim
assert (template_dir() / "base.html").is_file()
assert "flank_ops hook" in hook_shim("pre-receive", "/usr/bin/python3")
"""


def _resolve_from(root: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-S", "-c", RESOLVE, str(root)], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_templates_and_hooks_resolve_from_a_plain_checkout() -> None:
    found = _resolve_from(REPO)
    assert found == [str(REPO / folder / name) for folder, name in WANTED]


@pytest.mark.slow
def test_the_wheel_carries_them_inside_the_package_and_flank_finds_them_there(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("flank_ops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for folder, name in WANTED:
        assert f"flank_ops/{folder}/{name}" in names
    assert not any(n.startswith(("hooks/", "site_template/", "tests/")) for n in names)
    installed = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(installed)
    found = _resolve_from(installed)
    assert found == [str(installed / "flank_ops" / folder / name) for folder, name in WANTED]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "flank_ops").rglob("__init__.py")}
    assert folders <= listed, f"add to pyproject.toml's packages: {sorted(folders - listed)}"
