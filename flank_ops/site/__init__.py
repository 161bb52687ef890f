"""The static status site: built from run records with Jinja2 templates from site_template/ (package_data.py)."""
