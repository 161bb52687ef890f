from flank_ops.main import cli

cli()
