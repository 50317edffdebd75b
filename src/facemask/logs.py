"""Logging for pipeline jobs: to the job's log file and the console, errors as one clear line."""

import logging
import sys
import time
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


class Progress:
    """Progress of a loop of `total` steps: a log line every `every` seconds (quiet and line-based
    in a log file or pipe), and on a terminal also one status line rewritten in place at most
    every `redraw` seconds."""

    def __init__(self, total: int, label: str, every: float = 30.0, stream=None, redraw: float = 0.5):
        self.total, self.label, self.every, self.redraw = total, label, every, redraw
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.started = self.last_logged = self.last_drawn = time.perf_counter()
        self.items = 0

    def update(self, step: int, items: int, metrics: Callable[[], dict[str, float]] | None = None) -> None:
        """Record that `step` of the steps is done and `items` more images processed. When a line is
        due, show it with the values of `metrics()`, called only then (reading a value computed on
        a GPU waits for the GPU)."""
        self.items += items
        now = time.perf_counter()
        if self.interactive:
            due = step == self.total or now - self.last_drawn >= self.redraw
        else:
            due = now - self.last_logged >= self.every and step < self.total
        if not due:
            return
        elapsed = now - self.started
        rate = self.items / elapsed if elapsed > 0 else 0.0
        eta = elapsed / step * (self.total - step)
        shown = "".join(f"{name} {value:.4g}, " for name, value in (metrics() if metrics else {}).items())
        line = f"{self.label} step {step}/{self.total}: {shown}{rate:.0f} img/s, ETA {eta:.0f} s"
        if self.interactive:
            self.last_drawn = now
            self.stream.write("\r" + line[:150].ljust(150) + ("\n" if step == self.total else ""))
            self.stream.flush()
        else:
            self.last_logged = now
            log.info("%s", line)
