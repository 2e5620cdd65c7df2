"""Kibana saved objects (kibana/*.ndjson) and the `kibana import|export` command (docs/kibana.md)."""
