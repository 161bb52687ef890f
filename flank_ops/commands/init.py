"""flank init (placeholder until its issue lands)."""
from __future__ import annotations

import argparse

from flank_ops.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise UserError("'flank init' is not built yet")
