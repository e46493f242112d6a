"""p_hop: cage-jump indicator of a single trajectory, in its sliding-window and iterative forms.

Inputs are unwrapped positions ``positions`` of shape (..., F, N, 3) (any leading replica axes) on F frames
equally spaced in time (the isoconf dense window); outputs have shape (..., F, N), in sigma_AA^2.

Sliding window (Candelier, Dauchot & Biroli, PRL 105, 135702 (2010)): with A = [t - w/2, t] and
B = [t, t + w/2] (both windows include frame t; h = w / (2 interval) frames on each side),

    p_hop(t) = sqrt( <|r - <r>_B|^2>_A  <|r - <r>_A|^2>_B ),

<.>_X the average over the frames of X. It is NaN within h frames of either end, where a window does not fit.

Iterative (Pezzicoli's thesis, eq. 2.15; REFERENCE.md section 2): on a segment [a, b] of frames, the same
formula with U = [a, t] and V = [t, b] (the whole segment split at t, a < t < b) gives p(t); t* = argmax p
and p* = p(t*). When p* >= p_c, the segment is split at t* into [a, t* - 1] and [t* + 1, b] and each part is
treated the same way; the recursion stops on a part whose p* < p_c (or that has no frame strictly inside).
The frame t* itself belongs to neither part: on frames, t* is the last frame of one cage or the first of the
next, and a part that kept it would find the same jump again (p = a^2 / sqrt(8) for a jump a seen by a
two-frame window), a spurious second hop. Every
recorded hop (t*, p*) gives p* to the frames within t_f of t* (the largest p* where hops overlap), and 0
elsewhere. The recursion starts from the whole window.

Both forms are vectorised over replicas and particles: the window sums come from cumulative sums along the
frame axis, and each level of the recursion handles every open segment of every particle at once.
"""

from __future__ import annotations

import numpy as np


def _centred(positions: np.ndarray) -> np.ndarray:
    """Positions minus each particle's mean over the frames: smaller numbers, less cancellation below."""
    positions = np.asarray(positions, dtype=np.float64)
    return positions - positions.mean(axis=-3, keepdims=True)


def _cumulative(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S1[k] = sum_{f<k} x_f (..., F+1, N, 3) and S2[k] = sum_{f<k} |x_f|^2 (..., F+1, N)."""
    pad = [(0, 0)] * x.ndim
    pad[-3] = (1, 0)
    s1 = np.pad(np.cumsum(x, axis=-3), pad)
    s2 = np.pad(np.cumsum(np.einsum("...d,...d->...", x, x), axis=-2), pad[:-1])
    return s1, s2


def _phop_from_sums(m_a, q_a, m_b, q_b) -> np.ndarray:
    """sqrt(<|r - m_B|^2>_A <|r - m_A|^2>_B) from window means m (.., 3) and mean squares q of |r|^2."""
    cross = np.einsum("...d,...d->...", m_a, m_b)
    a_about_b = q_a - 2.0 * cross + np.einsum("...d,...d->...", m_b, m_b)
    b_about_a = q_b - 2.0 * cross + np.einsum("...d,...d->...", m_a, m_a)
    return np.sqrt(np.clip(a_about_b, 0.0, None) * np.clip(b_about_a, 0.0, None))


def phop_window(positions: np.ndarray, half_window: int) -> np.ndarray:
    """Sliding-window p_hop (Candelier et al.) with ``half_window`` = h frames on each side of t.

    positions: (..., F, N, 3) unwrapped (sigma_AA); returns (..., F, N) (sigma_AA^2), NaN where t < h or
    t > F - 1 - h.
    """
    h = int(half_window)
    x = _centred(positions)
    n_frames = x.shape[-3]
    if h < 1:
        raise ValueError(f"the p_hop half window must hold at least one frame, got {h}")
    out = np.full(x.shape[:-1], np.nan)
    if n_frames < 2 * h + 1:
        return out
    s1, s2 = _cumulative(x)
    t = np.arange(h, n_frames - h)
    n = h + 1.0
    # A = frames t-h..t, B = frames t..t+h.
    m_a = (s1[..., t + 1, :, :] - s1[..., t - h, :, :]) / n
    q_a = (s2[..., t + 1, :] - s2[..., t - h, :]) / n
    m_b = (s1[..., t + h + 1, :, :] - s1[..., t, :, :]) / n
    q_b = (s2[..., t + h + 1, :] - s2[..., t, :]) / n
    out[..., h : n_frames - h, :] = _phop_from_sums(m_a, q_a, m_b, q_b)
    return out


def phop_iterative(positions: np.ndarray, p_c: float, t_f_frames: int, chunk_rows: int = 8192) -> np.ndarray:
    """Iterative p_hop (thesis eq. 2.15): recursive splits at argmax p while p* >= p_c.

    positions: (..., F, N, 3) unwrapped (sigma_AA); p_c in sigma_AA^2; t_f_frames: frames on each side of a
    hop that receive its p*. Returns (..., F, N) (sigma_AA^2), 0 where no hop is recorded. The (replica,
    particle) rows are processed ``chunk_rows`` at a time to bound memory.
    """
    x = _centred(positions)
    lead = x.shape[:-3]
    n_frames, n = x.shape[-3], x.shape[-2]
    # One row per (replica..., particle): rows (M, F, 3).
    rows = np.moveaxis(x.reshape(-1, n_frames, n, 3), 2, 1).reshape(-1, n_frames, 3)
    labels = np.zeros(rows.shape[:2])
    for start in range(0, rows.shape[0], chunk_rows):
        labels[start : start + chunk_rows] = _iterative_rows(rows[start : start + chunk_rows], p_c, int(t_f_frames))
    return np.swapaxes(labels.reshape(*lead, n, n_frames), -1, -2)


def _iterative_rows(rows: np.ndarray, p_c: float, t_f_frames: int) -> np.ndarray:
    """phop_iterative of trajectories ``rows`` (M, F, 3); returns (M, F)."""
    n_rows, n_frames = rows.shape[:2]
    labels = np.zeros((n_rows, n_frames))
    if n_frames < 3:
        return labels
    s1, s2 = _cumulative(rows[:, :, None, :])
    s1, s2 = s1[:, :, 0, :], s2[:, :, 0]
    frames = np.arange(n_frames)
    boundary = np.zeros((n_rows, n_frames), dtype=bool)
    boundary[:, 0] = boundary[:, -1] = True
    active = np.arange(n_rows)
    hops_row, hops_frame, hops_value = [], [], []
    while active.size:
        bnd = boundary[active]
        # a(t): last boundary at or before t; b(t): first boundary at or after t.
        a = np.maximum.accumulate(np.where(bnd, frames, 0), axis=1)
        b = np.flip(np.minimum.accumulate(np.flip(np.where(bnd, frames, n_frames - 1), axis=1), axis=1), axis=1)
        rr = np.arange(active.size)[:, None]
        s1a, s2a = s1[active], s2[active]
        n_a = frames - a + 1.0
        n_b = b - frames + 1.0
        m_a = (s1a[rr, frames + 1] - s1a[rr, a]) / n_a[..., None]
        q_a = (s2a[rr, frames + 1] - s2a[rr, a]) / n_a
        m_b = (s1a[rr, b + 1] - s1a[rr, frames]) / n_b[..., None]
        q_b = (s2a[rr, b + 1] - s2a[rr, frames]) / n_b
        # Candidates lie strictly inside a segment (not on a boundary).
        p = np.where(bnd, -np.inf, _phop_from_sums(m_a, q_a, m_b, q_b))
        # Segments are the runs of frames between boundaries: id = number of boundaries at or before t.
        seg = np.cumsum(bnd, axis=1) + (np.arange(active.size) * (n_frames + 1))[:, None]
        flat_seg, flat_p = seg.ravel(), p.ravel()
        starts = np.flatnonzero(np.r_[True, flat_seg[1:] != flat_seg[:-1]])
        run_of = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, flat_p.size]))
        seg_max = np.maximum.reduceat(flat_p, starts)[run_of]
        hit_idx = np.flatnonzero((flat_p == seg_max) & (seg_max >= p_c))
        if hit_idx.size == 0:
            break
        _, first = np.unique(run_of[hit_idx], return_index=True)  # first frame at the maximum of each run
        chosen = hit_idx[first]
        local_row, frame = np.divmod(chosen, n_frames)
        row = active[local_row]
        hops_row.append(row)
        hops_frame.append(frame)
        hops_value.append(flat_p[chosen])
        # Children [a, t* - 1] and [t* + 1, b]: t* - 1, t*, t* + 1 become segment ends.
        boundary[row, frame] = True
        boundary[row, frame - 1] = True
        boundary[row, frame + 1] = True
        active = np.unique(row)
    if hops_row:
        row, frame, value = (np.concatenate(v) for v in (hops_row, hops_frame, hops_value))
        for offset in range(-t_f_frames, t_f_frames + 1):  # a loop over frame offsets, not over particles
            target = frame + offset
            ok = (target >= 0) & (target < n_frames)
            np.maximum.at(labels, (row[ok], target[ok]), value[ok])
    return labels


# --- registry --------------------------------------------------------------------------------------
from glasspipe.labels.registry import DENSE_GRID, Context, LabelSpec, register  # noqa: E402


def frames_of(duration: float, interval: float) -> int:
    """Whole frames in ``duration`` (tau) at spacing ``interval`` (tau), rounding 1e-6 up."""
    return int(np.floor(duration / interval + 1e-6))


def _compute(positions: np.ndarray, settings: dict, context: Context) -> dict[str, np.ndarray]:
    out = {"phop": phop_window(positions, max(1, int(round(0.5 * settings["window"] / context.interval))))}
    if settings["iterative"]:
        out["phop_iterative"] = phop_iterative(positions, settings["p_c"], frames_of(settings["t_f"], context.interval))
    return out


register(
    LabelSpec(
        name="phop",
        grid=DENSE_GRID,
        columns=lambda settings: ["phop", *(["phop_iterative"] if settings.get("iterative", True) else [])],
        compute=_compute,
        units="sigma_AA^2",
        description=(
            "p_hop of each replica's dense-window trajectory (sliding window of length 'window', Candelier et al. "
            "2010) and its iterative form (thesis eq. 2.15: p_c, t_f); replica mean, and replica 0 alone (_single)"
        ),
        time_keys=("window", "t_f"),
    )
)
