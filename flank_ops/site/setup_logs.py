"""issue 13: the Pushes page's setup lines — ran or reused, how long, and its log (secrets masked).

Each setup log (setup/logs/<name>.log, masked when written) is copied once into the site as
text (layout.url_setup_log); a failed setup's last lines are shown on the page itself.
"""

from __future__ import annotations

from typing import Any

from flank_ops.paths import ProjectPaths
from flank_ops.site import layout

TAIL_LINES = 30


def with_setup_logs(w: Any, paths: ProjectPaths, deploys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`deploys` with "setup_url" (the copied log) and, for a failed setup, "setup_tail"."""
    from flank_ops.store.deploy_log import FAILED
    from flank_ops.store.deploy_log import read_setup_log as read_log

    for deploy in deploys:
        setup = deploy.get("setup")
        if not isinstance(setup, dict) or not isinstance(setup.get("log"), str):
            continue
        url = layout.url_setup_log(paths.name, setup["log"])
        target = w.site / url
        text: str | None = None
        if not target.exists():
            data = read_log(paths, setup["log"])
            if data is None:
                continue  # pruned: the page says ran/reused without a link
            text = data.decode("utf-8", "replace")
            w.page(url, text)
        deploy["setup_url"] = url
        if setup.get("status") == FAILED:
            if text is None:
                text = target.read_text(encoding="utf-8", errors="replace")
            deploy["setup_tail"] = "\n".join(text.splitlines()[-TAIL_LINES:])
    return deploys
