"""Logging: one JSON object per line (LOG_FORMAT=json, the default) or readable lines (`console`).

structlog renders every record, ours and the libraries' (uvicorn, elasticsearch, SQLAlchemy)
alike, through the standard library's logging, so one handler on stderr prints them all in
one format. Values bound with `structlog.contextvars` (the request id, the key's id: see
request_context.py) are added to every line logged while a request is handled.

Nothing here logs a secret: requests are logged by route and key id (a digest prefix), never
with their headers; settings are logged only through their masked repr.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(fmt: str = "json", level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Route every log record through one structlog formatter on `stream` (stderr); returns the handler."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty())
    )
    processors: list[Any] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info if fmt == "json" else _keep,
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_SHARED, processors=processors)
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # One line per Elasticsearch request is noise; httpx's and httpcore's lines hold whole URLs (a
    # webhook's path is its credential); uvicorn's access lines are replaced by ours.
    for name in ("elastic_transport", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler


class _CurrentStderr(logging.StreamHandler):
    """A handler on whatever `sys.stderr` is when a record is emitted, not when it was made: a
    command run inside a test binds the test's captured stream, which is closed by the time a
    server thread of that test logs its last line."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def _keep(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    return event  # the console renderer formats exceptions itself
