"""Progress of long loops: a tqdm bar on a terminal, plain log lines at most every `every` seconds in a
log file or pipe, the metrics (which wait for the GPU) read only when shown."""

import io
import logging
import sys

import pytest

from facemask.config.sections import WHOLE_PHOTO
from facemask.data.cache import prepare_photos
from facemask.data.photo_index import index_eval_photos, index_train_photos
from facemask.utils import logs
from facemask.utils.logs import BarSafeHandler, Progress


class Stream(io.StringIO):
    """A stream that says whether it is a terminal."""

    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def clock(monkeypatch):
    """time.perf_counter as a clock that moves on only when told: `clock.now += seconds`."""

    class Clock:
        now = 1000.0

    monkeypatch.setattr(logs.time, "perf_counter", lambda: Clock.now)
    return Clock


def run_loop(progress: Progress, clock, steps: int, seconds: float, items: int = 16) -> list[int]:
    """`steps` updates of `progress`, `seconds` apart; the steps at which the metrics were read."""
    asked: list[int] = []
    for step in range(1, steps + 1):
        clock.now += seconds
        progress.update(step, items, lambda step=step: asked.append(step) or {"loss": 0.5, "lr": 1e-3})
    return asked


def test_a_terminal_gets_a_tqdm_bar_with_the_metrics_and_images_per_second(clock):
    terminal = Stream(tty=True)
    progress = Progress(3, "epoch 1", stream=terminal, redraw=0.0)
    asked = run_loop(progress, clock, 3, 0.5)
    shown = terminal.getvalue()
    assert asked == [1, 2, 3]
    assert "epoch 1: 100%|" in shown and "| 3/3 [" in shown and "step/s" in shown
    assert "loss=0.5, lr=0.001, img/s=32]" in shown, "48 photos in 1.5 s"
    assert shown.count("\n") == 1 and shown.endswith("\n"), "one bar, rewritten in place, closed at the end"
    assert progress.bar.disable, "closed at the last step, not left to the garbage collector"


def test_the_bar_is_redrawn_and_the_metrics_read_only_every_redraw_seconds(clock):
    terminal = Stream(tty=True)
    asked = run_loop(Progress(20, "epoch 1", stream=terminal, redraw=0.5), clock, 20, 0.125)
    assert asked == [4, 8, 12, 16, 20]
    assert "| 20/20 [" in terminal.getvalue() and "| 13/20 [" not in terminal.getvalue()


def test_a_log_file_or_pipe_gets_plain_lines_at_most_every_every_seconds(clock, caplog):
    piped = Stream(tty=False)
    with caplog.at_level(logging.INFO, logger="facemask"):
        asked = run_loop(Progress(20, "epoch 2", every=1.0, stream=piped), clock, 20, 0.25, items=8)
    assert piped.getvalue() == "", "no bar and no carriage return"
    assert asked == [4, 8, 12, 16], "not at the last step: the epoch's own line follows"
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "epoch 2 step 4/20: loss 0.5, lr 0.001, 32 img/s, ETA 4 s"
    assert len(lines) == 4 and not any("\r" in line for line in lines)


def test_with_nothing_due_the_metrics_are_not_read_and_nothing_is_shown(caplog):
    terminal, piped = Stream(tty=True), Stream(tty=False)
    with caplog.at_level(logging.INFO, logger="facemask"):
        on_terminal = Progress(1000, "epoch 3", stream=terminal, redraw=60.0)
        in_log = Progress(1000, "inference", every=60.0, stream=piped)
        for step in range(1, 1000):
            on_terminal.update(step, 4, lambda: pytest.fail("metrics read with no redraw due"))
            in_log.update(step, 4, lambda: pytest.fail("metrics read with no line due"))
    assert not caplog.records and piped.getvalue() == ""
    assert terminal.getvalue().count("\r") == 1 and "| 0/1000 [" in terminal.getvalue(), "the first draw only"


def test_a_log_record_clears_the_bar_and_gets_its_own_line(clock):
    terminal = Stream(tty=True)
    handler = BarSafeHandler(terminal)
    logs.log.addHandler(handler)
    try:
        progress = Progress(3, "epoch 1", stream=terminal, redraw=0.0)
        run_loop(progress, clock, 2, 0.5)
        logs.log.warning("a warning in the middle of an epoch")
        run_loop(progress, clock, 1, 0.5)
    finally:
        logs.log.removeHandler(handler)
    assert "\ra warning in the middle of an epoch\n\repoch 1:" in terminal.getvalue()


def test_the_data_check_and_the_image_cache_show_a_bar_on_a_terminal(demo_dir, tmp_path, monkeypatch):
    terminal = Stream(tty=True)
    monkeypatch.setattr(sys, "stderr", terminal)
    train, evaluation = index_train_photos(demo_dir, (30, 60)), index_eval_photos(demo_dir)
    prepare_photos(demo_dir, list(train["path"][:5]), (16, 16), tmp_path / "train.npy", WHOLE_PHOTO)
    shown = terminal.getvalue()
    assert f"checking train photos: 100%|##########| {len(train)}/{len(train)} [" in shown
    assert f"checking eval photos: 100%|##########| {len(evaluation)}/{len(evaluation)} [" in shown
    assert "preparing 16x16: 100%|##########| 5/5 [" in shown and "img/s=" in shown
