"""Structured JSON log lines (KOMU_LOG_FORMAT=json): one object per line with the time, level, logger, message,
the request id of the request or task that logged it, and the safe extra fields Komu's own loggers add.

Personal data never goes into a log line: Komu logs identifiers and route names, not names, paths or queries, and
this formatter keeps only an allow-list of extra fields — anything else a library attaches is dropped.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from komu.audit import context

SAFE_EXTRA = ("route", "method", "status", "duration_ms", "standby", "task", "count", "event")
# Django's own request loggers put the path and query of a request into the message ("Not Found: /students/?q=…"):
# only their first argument (the reason) is kept.
PATH_LOGGERS = ("django.request", "django.server", "django.security")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.current().request_id if context._current.get() is not None else ""
        return True


def _message(record: logging.LogRecord) -> str:
    if record.name.startswith(PATH_LOGGERS):
        if isinstance(record.args, tuple) and record.args:
            return str(record.args[0])
        return str(record.msg).split(":", 1)[0]
    return record.getMessage()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
            "request_id": getattr(record, "request_id", ""),
        }
        for key in SAFE_EXTRA:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and where it happened; its message may quote values, so it is left out.
            entry["exception"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                entry["at"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(entry, ensure_ascii=False)


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """settings.LOGGING: plain text for a trial, JSON lines for production (KOMU_LOG_FORMAT=json)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "komu.ops.logs.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "komu.ops.logs.JsonFormatter"},
            "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if fmt == "json" else "text",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "axes": {"level": "WARNING"},
            # The access line is for production logs; a trial's console keeps runserver's own.
            "komu.request": {"level": "INFO" if fmt == "json" else "WARNING"},
            "django.request": {"level": "ERROR"},
        },
    }
