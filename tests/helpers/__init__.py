"""What tests share besides fixtures: the CLI as a user runs it (cli.py), real git working copies
(repos.py), polling with a deadline (waiting.py). Import them as `from helpers.cli import run_flank`.

tests/ is on sys.path (pytest's rootdir conftest), so `helpers` is importable from every test;
conftest.py keeps the fixtures and re-exports these names for tests written before this package.
"""
