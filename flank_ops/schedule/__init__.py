"""Schedules: Debian-cron syntax checks, the crontab block, timezones, next run times, `flank scheduler`."""
