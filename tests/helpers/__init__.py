"""Every test helper shared by more than one test file; import them as `from helpers.cli import run_flank`.

The CLI as a user runs it (cli.py), real git working copies (repos.py), polling with a deadline (waiting.py);
real servers on 127.0.0.1 (servers.py: S3/moto, SMTP, HTTP; sshd.py; slurm_cluster.py; serve.py: `flank serve`;
batch_aws.py: AWS Batch on moto), headless Chromium over CDP (site_cdp.py); ready-made state: projects pushed for
real (pushing.py, deployed.py, readable_site.py), records written through flank_ops (site_records.py,
sample_runs.py, cost_fixtures.py), a real small disk (small_disk.py), the crontab save/restore fixture
(user_crontab.py), the cancel sweep (cancel_sweep.py, shared with bench/cancel.py).

pytest puts tests/ on the import path (the rootdir conftest), so `helpers` is importable from every test and from a plain
`pytest tests/x/y_test.py`; no test edits the import path. conftest.py keeps the fixtures and re-exports
cli/repos/waiting names for tests written before this package.
"""
