"""flank_ops: Airflow lite for one VM — git push, GNU make, cron, static site."""

__version__ = "0.1.0"
