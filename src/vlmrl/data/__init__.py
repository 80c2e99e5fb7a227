"""Data: sources -> canonical rows -> veRL parquet / TRL dataset."""
