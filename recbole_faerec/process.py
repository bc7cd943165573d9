"""Process-wide state RecBole reads or writes, scoped to one run: ``sys.argv`` and the logger.

RecBole's ``Config`` reads ``--key=value`` flags from the process's own command line, and its
``init_logger`` attaches handlers to the root logger once per process; runs started from Python
(reports, sweeps, Ray workers, tests) need both kept to the run at hand.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def hidden_command_line() -> Iterator[None]:
    """Hide ``sys.argv`` from RecBole's ``Config``, which parses ``--key=value`` flags from the
    process's own command line with the highest precedence: runs that pass their settings
    explicitly (reports, sweeps, Ray workers) must not pick up unrelated flags."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def init_logger(config) -> None:
    """RecBole's ``init_logger`` for one more run in the same process.

    RecBole attaches its console and file handlers with ``logging.basicConfig``, which does
    nothing once the root logger has handlers: a second run in one process (a report, a test
    session) would keep logging into the first run's file. The handlers are closed and removed
    first, so every run gets its own log file (and results JSON beside it).

    Under a process group only rank 0 keeps a log file; the other ranks log errors to the
    console (RecBole would give each of them an empty file).
    """
    from recbole.utils import init_logger as recbole_init_logger

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    recbole_init_logger(config)
    if not config["single_spec"] and config["local_rank"] != 0:
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler):
                root.removeHandler(handler)
                handler.close()
                Path(handler.baseFilename).unlink(missing_ok=True)
