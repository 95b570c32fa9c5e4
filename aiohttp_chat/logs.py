"""The server's log lines: readable text by default, or one JSON object per line.

`--log-format json` is for log shippers: each line has `time` (UTC, milliseconds), `level`,
`logger` and `message`, and the connection's `address`, `nick` and `room` where a line is
about one (the views pass them as `extra`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Final

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
CONNECTION_FIELDS: Final = ("address", "nick", "room")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONNECTION_FIELDS:
            if (value := getattr(record, field, None)) is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, kind: str) -> None:
    """Log to stderr at `level`, as `text` or `json` (only `main()` calls this)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
