"""One task as make starts it: the launchers (task_exec.c, task_exec.py), the checked launcher, secrets and masking."""
