"""Progress of a long loop (an MD run, a training run) for a person watching its log or its terminal.

A :class:`Progress` is told how far the loop has got, ``update(done)``, as often as is convenient (it only
reads a clock). At most once per ``interval_s`` of wall time it logs one line through :mod:`logging`
(logger ``glasspipe.progress``; the CLI sends it to stderr, which the workflow's rules redirect to
``results/logs/<stage>/...``)::

    equilibrate T=0.8: 45.0% (90000/200000 steps), 1234 steps/s, elapsed 1m13s, ETA 1m29s

and one line when the loop is done (or, for a loop that ends early, e.g. training stopped on its validation
score, one line from ``stop(reason)``). The rate is the average since the meter started, in the loop's unit per
second (work reused from a checkpoint does not count, see ``update(..., resumed=True)``); the ETA is the
work left divided by that rate. When stderr is a terminal, a bar redrawn in place (at most every
``BAR_INTERVAL_S``) replaces the periodic lines, and log records from elsewhere clear it before they print.

The interval defaults to ``DEFAULT_INTERVAL_S``; the environment variable ``GLASSPIPE_PROGRESS_INTERVAL_S``
(seconds) overrides it for every meter, e.g. 5 to watch a short run closely.

Why not tqdm or rich (issue 17; measured with tqdm 4.67 and rich 15.0, stderr redirected to a file as the
workflow's rules do): what a person reads is the stage's log file, and these lines are logging records there,
time-stamped and named like every other line (``2026-12-06 08:07:24,877 glasspipe.progress INFO: ...``).

- rich.progress on a non-terminal writes one line when the loop ends and nothing while it runs: no progress
  in a log file at all.
- tqdm writes its meter straight to the stream, not through :mod:`logging`: no time stamp, no logger name or
  level, not captured by tests through logging; on a terminal it needs ``logging_redirect_tqdm`` around every
  loop to keep other records from breaking the bar (here :class:`_ClearBar`).
- tqdm's adaptive ``miniters`` (its default) went silent for 5.4 s at a 0.5 s interval when a loop slowed
  20-fold (it waits for as many updates as the fast phase did between lines), unless ``miniters=1`` is
  passed: one more setting to get right at every call site.
- Neither has a line for a loop that stops early with its reason (:meth:`Progress.stop`), nor restarts the
  rate mid-run when work is reused rather than computed (``update(..., resumed=True)``; tqdm's ``reset``
  zeroes the count); tqdm's ``initial`` does handle a run resumed from a checkpoint.

Keeping this module costs about 170 lines of code (docstrings, comments and blank lines aside); its format is
documented for users (docs/artifact.md) and tested (tests/test_progress.py).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 30.0
INTERVAL_ENV = "GLASSPIPE_PROGRESS_INTERVAL_S"
BAR_INTERVAL_S = 0.2
BAR_WIDTH = 30


def format_duration(seconds: float | None) -> str:
    """``seconds`` as 7s, 2m05s or 1h02m05s (rounded to the second); '?' when unknown (None, inf, nan)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _format_amount(value: float) -> str:
    return f"{int(round(value))}" if float(value).is_integer() else f"{value:.2f}"


def _format_rate(rate: float | None) -> str:
    if rate is None:
        return "?"
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}" if rate >= 10 else f"{rate:.3g}"


@dataclass(frozen=True)
class Estimate:
    """fraction: done / total in [0, 1]; rate: units per second since the meter's start (None before any
    work was timed); eta_s: seconds left at that rate (None when the rate is unknown)."""

    fraction: float
    rate: float | None
    eta_s: float | None


def estimate(done: float, total: float, start: float, elapsed_s: float) -> Estimate:
    """Fraction done, average rate and time left of a loop that went from ``start`` to ``done`` of ``total``
    units in ``elapsed_s`` seconds of wall time."""
    fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
    work = done - start
    if elapsed_s <= 0 or work <= 0:
        return Estimate(fraction, None, None)
    rate = work / elapsed_s
    return Estimate(fraction, rate, max(total - done, 0.0) / rate)


def interval_from_env(default: float = DEFAULT_INTERVAL_S) -> float:
    """The reporting interval: ``GLASSPIPE_PROGRESS_INTERVAL_S`` if set (a positive number of seconds)."""
    raw = os.environ.get(INTERVAL_ENV)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"environment variable {INTERVAL_ENV} must be a positive number of seconds, not {raw!r}")
    return value


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _ClearBar(logging.Filter):
    """Attached to the log handlers writing to the bar's stream: erases the bar before a record prints."""

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress._clear_bar()
        return True


class Progress:
    """Report the progress of a loop of ``total`` units (steps, epochs, ...).

    label: what runs, first on every line (e.g. 'equilibrate T=0.8').
    total: units the loop does in all; start: units already done when it begins (a resumed run).
    interval_s: seconds between two log lines (default: :func:`interval_from_env`).
    clock: seconds, monotonic (injected by tests); stream: where the bar goes when it is a terminal
    (default sys.stderr); logger: where the lines go (default ``glasspipe.progress``).
    """

    def __init__(
        self,
        label: str,
        total: float,
        unit: str = "steps",
        *,
        start: float = 0,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
        logger: logging.Logger | None = None,
    ):
        self.label, self.total, self.unit = label, total, unit
        self.interval_s = interval_from_env() if interval_s is None else float(interval_s)
        self._clock = clock
        self._stream = sys.stderr if stream is None else stream
        self._logger = log if logger is None else logger
        self._bar = _is_terminal(self._stream)
        self._bar_visible = False
        self._filters: list[tuple[logging.Handler, _ClearBar]] = []
        self._t0 = self._last_line = self._last_bar = clock()
        self._start = self.done = start
        self.finished = False
        resuming = f", resuming at {_format_amount(start)}" if start else ""
        self._logger.info("%s: %s %s to run%s", label, _format_amount(total), unit, resuming)
        if self._bar:
            self._attach_filters()

    def estimate(self, now: float | None = None) -> Estimate:
        now = self._clock() if now is None else now
        return estimate(self.done, self.total, self._start, now - self._t0)

    def message(self, now: float | None = None) -> str:
        """The progress line: percentage, done/total, rate, elapsed time and ETA."""
        now = self._clock() if now is None else now
        e = self.estimate(now)
        return (
            f"{self.label}: {100 * e.fraction:.1f}% ({_format_amount(self.done)}/{_format_amount(self.total)}"
            f" {self.unit}), {_format_rate(e.rate)} {self.unit}/s, elapsed {format_duration(now - self._t0)},"
            f" ETA {format_duration(e.eta_s)}"
        )

    def update(self, done: float, *, resumed: bool = False) -> None:
        """The loop has reached ``done`` units. resumed: the units since the last call were reused (e.g. a
        replica finished by an earlier, killed job), not computed now: the rate restarts from here."""
        now = self._clock()
        self.done = done
        if resumed:
            self._start, self._t0 = done, now
        if self.finished:
            return
        if done >= self.total:
            self._finish(now)
        elif self._bar:
            if now - self._last_bar >= BAR_INTERVAL_S:
                self._draw_bar(now)
                self._last_bar = now
        elif now - self._last_line >= self.interval_s:
            self._logger.info("%s", self.message(now))
            self._last_line = now

    def stop(self, reason: str) -> None:
        """The loop ends before ``total`` (e.g. early stopping): one last line with ``reason`` instead of the
        done line, and the bar is cleared. Nothing happens when the meter has already finished."""
        if not self.finished:
            self._finish(self._clock(), reason)

    # --- the bar on a terminal ---
    def _draw_bar(self, now: float) -> None:
        e = self.estimate(now)
        filled = int(round(BAR_WIDTH * e.fraction))
        self._stream.write(
            f"\r{self.label} {100 * e.fraction:5.1f}% |{'#' * filled}{'-' * (BAR_WIDTH - filled)}|"
            f" {_format_amount(self.done)}/{_format_amount(self.total)} {self.unit}"
            f" [{format_duration(now - self._t0)}<{format_duration(e.eta_s)}, {_format_rate(e.rate)} {self.unit}/s]"
            "\x1b[K"
        )
        self._stream.flush()
        self._bar_visible = True

    def _clear_bar(self) -> None:
        if self._bar_visible:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._bar_visible = False

    def _attach_filters(self) -> None:
        logger: logging.Logger | None = self._logger
        while logger is not None:
            for handler in logger.handlers:
                if getattr(handler, "stream", None) is self._stream:
                    bar_filter = _ClearBar(self)
                    handler.addFilter(bar_filter)
                    self._filters.append((handler, bar_filter))
            logger = logger.parent if logger.propagate else None

    def _finish(self, now: float, reason: str | None = None) -> None:
        self.finished = True
        self._clear_bar()
        for handler, bar_filter in self._filters:
            handler.removeFilter(bar_filter)
        self._filters = []
        e = self.estimate(now)
        ended = (
            "done"
            if reason is None
            else f"stopped at {_format_amount(self.done)}/{_format_amount(self.total)} ({reason})"
        )
        self._logger.info(
            "%s: %s, %s %s in %s (%s %s/s)",
            self.label,
            ended,
            _format_amount(self.done - self._start),
            self.unit,
            format_duration(now - self._t0),
            _format_rate(e.rate),
            self.unit,
        )
