"""Logging for pipeline jobs: to the job's log file and the console, errors as one clear line."""

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from facemask.errors import PipelineError

log = logging.getLogger("facemask")


def setup_logging(log_file: str | Path | None = None) -> None:
    """Send the package's log records to stderr and, if given, to `log_file` (overwritten)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )


def run_job(main: Callable[[], None], log_file: str | Path | None = None) -> None:
    """Run a job's main function with logging set up; a PipelineError ends it with its message
    alone (exit 1), any other error with its traceback in the log."""
    setup_logging(log_file)
    try:
        main()
    except PipelineError as error:
        log.error("%s", error)
        sys.exit(1)
    except Exception:
        log.exception("job failed")
        sys.exit(1)
