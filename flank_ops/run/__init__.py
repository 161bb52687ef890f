"""Runs: generated Makefiles, the task launcher, the runner, run records, notes, secrets."""
