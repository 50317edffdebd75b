"""Logging for pipeline jobs: to the job's log file and the console, errors as one clear line."""

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from facemask.utils.errors import PipelineError

log = logging.getLogger("facemask")


class BarSafeHandler(logging.StreamHandler):
    """A stream handler that clears the progress bars on its stream before a record and redraws them
    after, so that a message on a terminal does not land in the middle of a bar."""

    def emit(self, record: logging.LogRecord) -> None:
        with tqdm.external_write_mode(file=self.stream):
            super().emit(record)


def setup_logging(log_file: str | Path | None = None) -> None:
    """Send the package's log records to stderr and, if given, to `log_file` (overwritten)."""
    handlers: list[logging.Handler] = [BarSafeHandler(sys.stderr)]
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
    """Progress of a loop of `total` steps: on a terminal a tqdm bar redrawn at most every `redraw`
    seconds (by this class, which reads the metrics only then, not by tqdm's own timer: its counter is
    set, never updated); in a log file or pipe, no bar but a log line at most every `every` seconds."""

    def __init__(self, total: int, label: str, every: float = 30.0, stream=None, redraw: float = 0.5):
        self.total, self.label, self.every, self.redraw = total, label, every, redraw
        stream = stream or sys.stderr
        self.bar = tqdm(total=total, desc=label, file=stream, disable=not stream.isatty(), unit="step")
        self.started = self.last_logged = self.last_drawn = time.perf_counter()
        self.items = 0

    def update(self, step: int, items: int, metrics: Callable[[], dict[str, float]] | None = None) -> None:
        """Record that `step` of the steps is done and `items` more images processed. When a line or
        redraw is due, show it with the values of `metrics()`, called only then (reading a value
        computed on a GPU waits for the GPU); the bar is closed at the last step."""
        self.items += items
        now = time.perf_counter()
        if self.bar.disable:
            if now - self.last_logged >= self.every and step < self.total:
                self.last_logged = now
                self.log_line(step, now, metrics)
        elif step == self.total or now - self.last_drawn >= self.redraw:
            self.last_drawn = now
            rate = self.items / max(now - self.started, 1e-9)
            shown = {name: f"{value:.4g}" for name, value in (metrics() if metrics else {}).items()}
            self.bar.set_postfix(shown | {"img/s": f"{rate:.0f}"}, refresh=False)
            self.bar.n = step
            if step == self.total:
                self.bar.close()
            else:
                self.bar.refresh()

    def log_line(self, step: int, now: float, metrics: Callable[[], dict[str, float]] | None) -> None:
        """Log the progress at `step`: the values of `metrics()`, images/s and the time left."""
        elapsed = now - self.started
        rate = self.items / elapsed if elapsed > 0 else 0.0
        eta = elapsed / step * (self.total - step)
        shown = "".join(f"{name} {value:.4g}, " for name, value in (metrics() if metrics else {}).items())
        log.info("%s step %d/%d: %s%.0f img/s, ETA %.0f s", self.label, step, self.total, shown, rate, eta)
