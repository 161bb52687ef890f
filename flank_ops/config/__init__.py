"""flank.yml: the model (model.py), loading and validation (load.py), JSON Schema (schema.py)."""
