"""The package works from a plain source checkout: no install step remaps folders into it (issue 10, item 6)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run with -S (no site-packages, so neither the editable install's finder nor any installed copy of
# flank_ops is visible) from the checkout: only the source tree can answer these imports.
RESOLVE_RESOURCES = """
import sys
from importlib.resources import files
import flank_ops
assert flank_ops.__file__.startswith(sys.argv[1]), flank_ops.__file__
for package, name in [("flank_ops.site_template", "run.html"), ("flank_ops.site_template", "style.css"),
                      ("flank_ops.hooks", "pre-receive"), ("flank_ops.hooks", "post-receive"),
                      ("flank_ops.cost", "ec2_types.csv"), ("flank_ops.run", "task_exec.c")]:
    resource = files(package).joinpath(name)
    assert resource.is_file(), (package, name)
    print(package, name, len(resource.read_text(encoding="utf-8")))
"""


def test_templates_and_hooks_resolve_from_a_plain_checkout():
    result = subprocess.run(
        [sys.executable, "-S", "-c", RESOLVE_RESOURCES, str(REPO)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert all(int(line.rsplit(" ", 1)[1]) > 0 for line in lines)
