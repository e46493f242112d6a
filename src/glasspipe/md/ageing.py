"""The no-ageing check of an equilibration: tau_alpha must be the same early and late in production.

A system that is still ageing after the quench relaxes more slowly as time goes on; one in equilibrium
has the same alpha-relaxation time in any window. We measure tau_alpha (F_s(q = 7.25, t) of the A
particles = 1/e, averaged over time origins) separately in the first and second half of the production
frames and compare.
"""

from __future__ import annotations

import warnings

import numpy as np

from glasspipe.dynamics.relaxation import Q_PEAK_KA, self_isf_multi_origin, tau_alpha
from glasspipe.io.gsd_io import Snapshot

# Ageing after a quench into the supercooled regime slows relaxation by factors of several within the
# first tens of tau_alpha; window-to-window scatter of a tau_alpha measured over a few tau_alpha of an
# N ~ 1000 system is ~10-20 %. A ratio beyond 1.5 is therefore ageing, not noise.
MAX_RATIO = 1.5


def window_tau_alpha(frames: list[Snapshot], q: float = Q_PEAK_KA) -> tuple[float, np.ndarray, np.ndarray]:
    """tau_alpha (tau) of evenly spaced frames from the multi-origin F_s of A particles; NaN if unresolved.

    Returns (tau_alpha, lag_times, fs) with lags up to half the window.
    """
    times = np.array([frame.time for frame in frames])
    positions = np.stack([frame.unwrapped_positions() for frame in frames])
    is_a = frames[0].typeid == 0
    lags, fs = self_isf_multi_origin(times, positions, q, mask=is_a, max_lag=max(1, len(frames) // 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return tau_alpha(lags, fs), lags, fs


def ageing_check(frames: list[Snapshot], q: float = Q_PEAK_KA, max_ratio: float = MAX_RATIO) -> dict:
    """Compare tau_alpha in the first and second half of the production frames (JSON-able dict)."""
    result = {"name": "ageing", "threshold": max_ratio, "q": q}
    if len(frames) < 8:
        return {
            **result,
            "passed": False,
            "value": None,
            "tau_alpha": None,
            "message": f"only {len(frames)} production frames; need at least 8 to compare two windows",
        }
    half = len(frames) // 2
    early, _, _ = window_tau_alpha(frames[:half], q)
    late, _, _ = window_tau_alpha(frames[half:], q)
    whole, _, _ = window_tau_alpha(frames, q)
    # JSON has no NaN: an unresolved time is None.
    result.update(
        {
            key: float(value) if np.isfinite(value) else None
            for key, value in (("tau_alpha_early", early), ("tau_alpha_late", late), ("tau_alpha", whole))
        }
    )
    spacing = frames[1].time - frames[0].time
    if not (np.isfinite(early) and np.isfinite(late)):
        return {
            **result,
            "passed": False,
            "value": None,
            "message": (
                f"tau_alpha not resolved in both halves (early {early:.4g}, late {late:.4g}); frames are "
                f"{spacing:g} tau apart over {frames[-1].time - frames[0].time:g} tau: lengthen the "
                "production window (several tau_alpha per half) or sample more frames"
            ),
        }
    ratio = late / early
    passed = 1 / max_ratio < ratio < max_ratio
    verdict = "no ageing" if passed else "AGEING or drift"
    return {
        **result,
        "passed": bool(passed),
        "value": float(ratio),
        "message": f"tau_alpha early {early:.4g}, late {late:.4g} (ratio {ratio:.3f}; limit {max_ratio}) -> {verdict}",
    }
