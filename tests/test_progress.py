"""glasspipe.progress: ETA arithmetic, the reporting interval, the terminal bar; all on a fake clock."""

from __future__ import annotations

import io
import logging

import pytest

from glasspipe import progress as pg


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def records(caplog):
    caplog.set_level(logging.INFO, logger="glasspipe.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "glasspipe.progress"]


def test_estimate_by_hand():
    # 25 of 100 units in 5 s from 0: 5 units/s, 75 left -> 15 s. Exact in binary floating point.
    e = pg.estimate(25, 100, 0, 5.0)
    assert (e.fraction, e.rate, e.eta_s) == (0.25, 5.0, 15.0)
    # Resumed at 20: only the 5 units done now count -> 1 unit/s, 75 left -> 75 s.
    e = pg.estimate(25, 100, 20, 5.0)
    assert (e.rate, e.eta_s) == (1.0, 75.0)
    # Nothing timed yet, or no work yet: rate and ETA unknown, fraction still known.
    assert pg.estimate(0, 100, 0, 3.0) == pg.Estimate(0.0, None, None)
    assert pg.estimate(30, 100, 0, 0.0) == pg.Estimate(0.3, None, None)
    # Fractional units (epochs), past the end clamps to 1 and 0 s left.
    e = pg.estimate(2.5, 10, 0, 10.0)
    assert (e.fraction, e.rate, e.eta_s) == (0.25, 0.25, 30.0)
    assert pg.estimate(12, 10, 0, 6.0).fraction == 1.0 and pg.estimate(12, 10, 0, 6.0).eta_s == 0.0


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0s"), (59.4, "59s"), (59.6, "1m00s"), (61, "1m01s"), (3725, "1h02m05s"), (None, "?"), (float("inf"), "?")],
)
def test_format_duration(seconds, text):
    assert pg.format_duration(seconds) == text


def test_lines_come_at_the_interval_with_the_eta(records):
    clock = FakeClock()
    meter = pg.Progress("equilibrate T=0.8", 100, "steps", interval_s=10, clock=clock, stream=io.StringIO())
    for t in range(1, 36):  # one step per second, updated every second
        clock.t = 100.0 + t
        meter.update(t)
    lines = records()
    assert lines[0] == "equilibrate T=0.8: 100 steps to run"
    # Lines at t = 10, 20, 30 s only: 1 step/s, ETA = steps left / 1 step/s.
    assert lines[1:] == [
        "equilibrate T=0.8: 10.0% (10/100 steps), 1 steps/s, elapsed 10s, ETA 1m30s",
        "equilibrate T=0.8: 20.0% (20/100 steps), 1 steps/s, elapsed 20s, ETA 1m20s",
        "equilibrate T=0.8: 30.0% (30/100 steps), 1 steps/s, elapsed 30s, ETA 1m10s",
    ]


def test_frequent_updates_do_not_add_lines(records):
    clock = FakeClock()
    meter = pg.Progress("x", 1e6, interval_s=30, clock=clock, stream=io.StringIO())
    for k in range(1, 10_001):  # 10,000 updates within 29 s: no progress line
        clock.t = 100.0 + 29.0 * k / 10_000
        meter.update(k)
    assert len(records()) == 1


def test_done_line_once_and_rate_of_this_run_only(records):
    clock = FakeClock()
    meter = pg.Progress("train", 10, "epochs", start=4, interval_s=1000, clock=clock, stream=io.StringIO())
    clock.t += 30.0
    meter.update(7)
    assert meter.message() == "train: 70.0% (7/10 epochs), 0.1 epochs/s, elapsed 30s, ETA 30s"
    clock.t += 30.0
    meter.update(10)
    clock.t += 5.0
    meter.update(10)
    lines = records()
    assert lines == ["train: 10 epochs to run, resuming at 4", "train: done, 6 epochs in 1m00s (0.1 epochs/s)"]
    assert meter.finished


def test_a_loop_that_stops_early_says_so_once(records):
    """stop(reason): training stopped by early stopping ends the meter with the reason and the work done,
    instead of the done line; later updates and stops add nothing, and a finished meter ignores stop."""
    clock = FakeClock()
    meter = pg.Progress("se3 training", 10, "epochs", interval_s=1000, clock=clock, stream=io.StringIO())
    clock.t += 8.0
    meter.update(4)
    meter.stop("early stop after 2 epochs without a better validation Pearson")
    meter.update(5)
    meter.stop("again")
    assert records() == [
        "se3 training: 10 epochs to run",
        "se3 training: stopped at 4/10 (early stop after 2 epochs without a better validation Pearson),"
        " 4 epochs in 8s (0.5 epochs/s)",
    ]
    assert meter.finished
    done = pg.Progress("x", 2, "epochs", interval_s=1000, clock=clock, stream=io.StringIO())
    done.update(2)
    done.stop("nothing left to train")
    assert records()[-1].startswith("x: done, 2 epochs")


def test_resumed_work_restarts_the_rate():
    clock = FakeClock()
    meter = pg.Progress("isoconf", 400, interval_s=1000, clock=clock, stream=io.StringIO())
    clock.t += 2.0
    meter.update(100, resumed=True)  # replica 0 reused from a checkpoint
    clock.t += 10.0
    meter.update(150)  # 50 steps in 10 s -> 5 steps/s, 250 left -> 50 s
    e = meter.estimate()
    assert (e.rate, e.eta_s) == (5.0, 50.0)


def test_fractional_epochs_are_printed_with_two_decimals():
    clock = FakeClock()
    meter = pg.Progress("bapst training", 4, "epochs", interval_s=1000, clock=clock, stream=io.StringIO())
    clock.t += 8.0
    meter.update(1.5)
    assert meter.message() == "bapst training: 37.5% (1.50/4 epochs), 0.188 epochs/s, elapsed 8s, ETA 13s"


def test_terminal_gets_a_bar_and_no_periodic_lines(records):
    clock = FakeClock()
    terminal = Terminal()
    meter = pg.Progress("md", 100, interval_s=1, clock=clock, stream=terminal)
    for t in range(1, 100):
        clock.t = 100.0 + 0.125 * t  # 8 steps/s, an update every 0.125 s (exact in binary)
        meter.update(t)
    text = terminal.getvalue()
    # Redrawn when 0.2 s (BAR_INTERVAL_S) have passed since the last drawing: every second update, 49 times.
    assert text.count("\r") == 49
    last = text.split("\r")[-1]
    assert last == "md  98.0% |" + "#" * 29 + "-| 98/100 steps [12s<0s, 8 steps/s]\x1b[K"
    assert records() == ["md: 100 steps to run"]
    clock.t += 0.125
    meter.update(100)
    assert terminal.getvalue().endswith("\r\x1b[K")  # the bar erased before the final line
    assert records()[-1] == "md: done, 100 steps in 12s (8 steps/s)"


def test_log_records_on_the_terminal_erase_the_bar_first():
    clock = FakeClock()
    terminal = Terminal()
    logger = logging.getLogger("glasspipe.test_progress_bar")
    logger.propagate = False
    handler = logging.StreamHandler(terminal)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        meter = pg.Progress("md", 10, interval_s=1, clock=clock, stream=terminal, logger=logger)
        clock.t += 1.0
        meter.update(5)
        logger.info("epoch 3 done")
        # The bar (drawn at the update), erased, then the record on a clean line.
        assert terminal.getvalue().endswith("steps/s]\x1b[K\r\x1b[Kepoch 3 done\n")
        clock.t += 1.0
        meter.update(10)
        assert not handler.filters  # detached when done
    finally:
        logger.removeHandler(handler)


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv(pg.INTERVAL_ENV, "5")
    assert pg.interval_from_env() == 5.0
    assert pg.Progress("x", 1, stream=io.StringIO()).interval_s == 5.0
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(pg.INTERVAL_ENV, bad)
        with pytest.raises(ValueError, match=pg.INTERVAL_ENV):
            pg.interval_from_env()
    monkeypatch.delenv(pg.INTERVAL_ENV)
    assert pg.interval_from_env() == pg.DEFAULT_INTERVAL_S
