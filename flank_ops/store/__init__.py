"""Everything that reads or writes state under FLANK_HOME: the run record (model.py) and its files (records.py),
per-pipeline state, the deploy log and state, pending uploads, kept artifacts. It knows no cluster and no page."""
