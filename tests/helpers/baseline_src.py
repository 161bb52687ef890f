"""An older checkout as the benches' `--baseline-src DIR` runs it (bench/overhead.py, incremental.py, push.py)."""

from __future__ import annotations

import shutil
from pathlib import Path


def baseline_tree(src: str | Path, tmp: Path) -> str:
    """The folder to put on PYTHONPATH to run the flank_ops of checkout `src` with *its* templates and
    hook shims. An editable install of this checkout maps flank_ops.site_template and flank_ops.hooks
    (package_data.py) to this checkout's folders whatever PYTHONPATH says, so a baseline drew its pages
    with these templates; in a copy of `src` they sit inside its flank_ops/, where they are found first."""
    src = Path(src).resolve()
    tree = tmp / "baseline-src"
    shutil.copytree(src / "flank_ops", tree / "flank_ops", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("site_template", "hooks"):
        if (src / folder).is_dir() and not (tree / "flank_ops" / folder).exists():
            shutil.copytree(src / folder, tree / "flank_ops" / folder)
    return str(tree)
