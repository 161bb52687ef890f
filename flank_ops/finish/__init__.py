"""What a run sets off outside itself: its pages while it runs, and once its record is final the
git note, the site, S3, notifications, pings and the VM's size (run_steps.py).

The layer above the integrations: site/, notify/, storage/, git/ and cost/ read run records,
so they sit above run/, and the runner gets these steps handed in (run.runner.RunSteps) instead
of importing its own readers. tests/import_graph_test.py keeps the folders free of loops.
"""
