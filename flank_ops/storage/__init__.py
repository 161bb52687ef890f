"""Storage integrations: S3 upload of records, logs and the site."""
