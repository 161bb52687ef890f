"""The static status site: built from run records with Jinja2 templates from flank_ops/site_template/."""
