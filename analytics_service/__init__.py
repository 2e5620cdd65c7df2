"""Order and activity analytics for online stores, on Elasticsearch."""

__version__ = "0.1.0"
