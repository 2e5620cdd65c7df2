"""Development tooling, kept out of the service's runtime: a local Elasticsearch node (`local_es`) and the
sample-data generator (`sample_data`). The service imports neither; `analytics_service.cli` dispatches to
them (`es`, `seed` and `dev` commands, README.md "Commands")."""
