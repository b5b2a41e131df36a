"""Structured logs: one JSON object per line, for the server and uvicorn alike.

Log shippers (journald, Loki, CloudWatch) parse these without regular expressions; request
lines carry method, path, status, duration and the account, never a token.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

EXTRA_KEYS = ("method", "path", "status", "duration_ms", "user", "rule")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: getattr(record, k) for k in EXTRA_KEYS if hasattr(record, k)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def log_config(level: str = "INFO") -> dict:
    """A ``logging.config.dictConfig`` dict (also uvicorn's ``log_config``)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    loggers = ("synthmed", "uvicorn", "uvicorn.error")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "loggers": {
            **{
                name: {"handlers": ["json"], "level": level, "propagate": False} for name in loggers
            },
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
