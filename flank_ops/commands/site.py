"""flank site: rebuild the static status site from the run records."""

from __future__ import annotations

import argparse

from flank_ops.paths import Home
from flank_ops.site.build import rebuild


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="rewrite every page (default: only runs whose record changed since their page was written)",
    )


def run(args: argparse.Namespace) -> int:
    home = Home()
    stats = rebuild(home, only_changed=not args.rebuild)
    for w in stats.warnings:
        print(f"flank: warning: {w}")
    unchanged = f", {stats.skipped_runs} unchanged" if stats.skipped_runs else ""
    print(f"flank: site built in {home.site_dir} — {stats.pages} pages, {stats.runs} runs{unchanged}")
    print(f"flank: open {home.site_dir / 'index.html'} or run: flank serve")
    return 0
