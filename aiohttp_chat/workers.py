"""`--workers N`: N server processes on one port (SO_REUSEPORT), sharing their state in
Redis, under one supervisor that passes SIGINT and SIGTERM on and stops them all if one
ends."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from typing import Final

from .frames import CLOSE_TIMEOUT

logger = logging.getLogger(__name__)

STOP_SECONDS: Final = CLOSE_TIMEOUT + 5  # after one failed, for the others to stop


def supervise(argv: list[str], workers: int, metrics_port: int | None) -> int:
    """Run `workers` server processes on one port; pass SIGINT/SIGTERM on; 0 if all ended 0.

    With `metrics_port`, worker i serves /metrics on `metrics_port + i`: behind one shared
    port a scrape would reach any worker, so each is its own Prometheus target there."""
    command = [sys.executable, "-m", "aiohttp_chat.server", *argv, "--workers", "1"]
    command.append("--reuse-port")
    children = [
        subprocess.Popen(
            [*command, *(["--metrics-port", str(metrics_port + i)] if metrics_port else [])],
            start_new_session=True,
        )
        for i in range(workers)
    ]
    logger.info("Started %d workers: %s", workers, " ".join(str(c.pid) for c in children))

    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    failed, given_up_at = False, 0.0
    while None in (codes := [child.poll() for child in children]):
        ended = [child for child, code in zip(children, codes, strict=True) if code is not None]
        if ended and not stopping:  # one could not start, or died: the port is half served
            logger.error("Worker %d ended with %s: stopping the others", ended[0].pid,
                         ended[0].returncode)  # fmt: skip
            failed, given_up_at = True, time.monotonic() + STOP_SECONDS
            forward(signal.SIGTERM, None)
        elif failed and time.monotonic() > given_up_at:  # one that will not stop: made to
            for child in children:
                if child.poll() is None:
                    logger.error("Worker %d did not stop: killing it", child.pid)
                    child.kill()
        time.sleep(0.1)
    logger.info("Workers stopped with %s", codes)
    # A worker told to stop before it could handle the signal (still starting) died of it:
    # stopped as asked, all the same.
    stopped = [0 if stopping and code == -signal.SIGTERM else code for code in codes]
    return 1 if failed or any(stopped) else 0
