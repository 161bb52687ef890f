"""Where flank's own data folders are: the git hook shims (hooks/) and the site's templates (site_template/).

Both live at the top of the repository, beside flank_ops/, and are mapped into the package when it is built
(pyproject.toml: package-dir), so an installed wheel and an editable install find them as the packages
flank_ops.hooks and flank_ops.site_template. A plain checkout run without installing (PYTHONPATH=.) has no
such packages: there they are the folders next to flank_ops/. tests/source_tree_test.py checks both ways.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

FOLDERS = ("hooks", "site_template")


def package_folder(name: str) -> Path:
    """The folder of flank_ops.<name> (one of FOLDERS), installed or in a plain checkout."""
    try:
        return Path(str(files(f"flank_ops.{name}")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / name
