"""flank schema: print the JSON Schema of flank.yml (for editors)."""

from __future__ import annotations

import argparse
import json

from flank_ops.config.schema import json_schema


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0
