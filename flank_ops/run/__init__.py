"""A run: the runner, the generated Makefile and task specs, starting a run in the background, cancel, follow."""
