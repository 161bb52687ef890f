import sys

if sys.argv[1:2] == ["hook"]:
    # A git hook is short-lived and on the path of every push: no cyclic garbage collection
    # (~1 ms of each pre-receive, more in its deploying child; issue 22).
    import gc

    gc.disable()

from flank_ops.main import cli  # noqa: E402

cli()
