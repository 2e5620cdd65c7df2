"""Importers: bring existing exports (CSV files) into the service through the Ingestor.

`csv_import` reads a CSV export with a JSON column mapping (docs/importing.md);
built-in mappings live in `mappings/` and are found by name.
"""
