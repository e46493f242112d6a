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
two-frame window), a spurious second hop. Every recorded hop (t*, p*) gives p* to the frames within t_f of
t* (the largest p* where hops overlap), and 0 elsewhere. The recursion starts from the whole window.

Both forms are vectorised over particles (blocks of BLOCK_PARTICLES per replica): the window sums come from
cumulative sums along the frame axis; the first split of the iterative form is computed for a whole block,
and each further level of the recursion handles every open segment of the hopping trajectories at once.
"""

from __future__ import annotations

import numpy as np


def _planar(positions: np.ndarray) -> np.ndarray:
    """(..., F, N, 3) positions -> (3, L, F, N) float64, minus each particle's mean over the frames.

    One contiguous array per coordinate keeps every operation below on long contiguous runs; subtracting the
    mean makes the numbers smaller, so the window sums cancel less.
    """
    x = np.asarray(positions, dtype=np.float64)
    n_frames, n = x.shape[-3], x.shape[-2]
    planar = np.ascontiguousarray(np.moveaxis(x.reshape(-1, n_frames, n, 3), -1, 0))
    planar -= planar.mean(axis=2, keepdims=True)
    return planar


def _cumulative(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """S1[k] = sum_{f<k} x_f (3, ..., F+1, ...) and S2[k] = sum_{f<k} |x_f|^2 along ``axis`` (of x[d])."""
    shape = list(x.shape)
    shape[axis + 1] += 1
    s1 = np.zeros(shape)
    inner = [slice(None)] * len(shape)
    inner[axis + 1] = slice(1, None)
    np.cumsum(x, axis=axis + 1, out=s1[tuple(inner)])
    s2 = np.zeros(shape[1:])
    np.cumsum(x[0] * x[0] + x[1] * x[1] + x[2] * x[2], axis=axis, out=s2[tuple(inner[1:])])
    return s1, s2


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _phop_from_sums(m_a, q_a, m_b, q_b) -> np.ndarray:
    """sqrt(<|r - m_B|^2>_A <|r - m_A|^2>_B) from window means m (3, ...) and mean squares q of |r|^2."""
    cross = _dot(m_a, m_b)
    a_about_b = q_a - 2.0 * cross + _dot(m_b, m_b)
    b_about_a = q_b - 2.0 * cross + _dot(m_a, m_a)
    return np.sqrt(np.clip(a_about_b, 0.0, None) * np.clip(b_about_a, 0.0, None))


# Trajectories are processed in blocks of this many particles (per replica): the temporaries then stay small
# and are recycled, instead of touching fresh memory for every array operation.
BLOCK_PARTICLES = 512


def _blocks(positions: np.ndarray):
    """Yield (l, particle slice, planar block (3, 1, F, b)) over the leading axes and particle blocks."""
    n_frames, n = positions.shape[-3], positions.shape[-2]
    flat = positions.reshape(-1, n_frames, n, 3)
    for l, trajectory in enumerate(flat):
        for start in range(0, n, BLOCK_PARTICLES):
            part = slice(start, min(n, start + BLOCK_PARTICLES))
            yield l, part, _planar(trajectory[None, :, part])


def phop_window(positions: np.ndarray, half_window: int) -> np.ndarray:
    """Sliding-window p_hop (Candelier et al.) with ``half_window`` = h frames on each side of t.

    positions: (..., F, N, 3) unwrapped (sigma_AA); returns (..., F, N) (sigma_AA^2), NaN where t < h or
    t > F - 1 - h.
    """
    return phop_both(positions, half_window=half_window)[0]


def phop_iterative(positions: np.ndarray, p_c: float, t_f_frames: int) -> np.ndarray:
    """Iterative p_hop (thesis eq. 2.15): recursive splits at argmax p while p* >= p_c.

    positions: (..., F, N, 3) unwrapped (sigma_AA); p_c in sigma_AA^2; t_f_frames: frames on each side of a
    hop that receive its p*. Returns (..., F, N) (sigma_AA^2), 0 where no hop is recorded.

    The first split (the whole window, the same for every trajectory) is computed for a block of particles at
    once from cumulative sums; only the trajectories that hop there (p* >= p_c) go on to the recursion.
    """
    return phop_both(positions, p_c=p_c, t_f_frames=t_f_frames)[1]


def phop_both(
    positions: np.ndarray, half_window: int | None = None, p_c: float | None = None, t_f_frames: int = 0
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(phop_window, phop_iterative) in one pass over the blocks of trajectories (the cumulative sums are
    shared); a form whose parameter (``half_window``, ``p_c``) is None is skipped and returned as None."""
    positions = np.asarray(positions)
    shape = positions.shape[:-1]
    n_frames, n = shape[-2], shape[-1]
    window = iterative = None
    h = None if half_window is None else int(half_window)
    if h is not None:
        if h < 1:
            raise ValueError(f"the p_hop half window must hold at least one frame, got {h}")
        window = np.full(shape, np.nan)
        if n_frames < 2 * h + 1:
            h = None
    if p_c is not None:
        iterative = np.zeros((int(np.prod(shape[:-2], dtype=np.int64)), n, n_frames))
    if h is None and (p_c is None or n_frames < 3):
        return window, None if iterative is None else np.swapaxes(iterative.reshape(*shape[:-2], n, n_frames), -1, -2)
    flat_window = None if window is None else window.reshape(-1, n_frames, n)
    t = np.arange(1, n_frames - 1)[:, None]
    for l, part, x in _blocks(positions):
        s1, s2 = _cumulative(x, axis=1)
        if h is not None:
            # For t = h .. F-1-h: A = frames t-h..t (sums S[t+1] - S[t-h]), B = frames t..t+h (S[t+h+1] - S[t]).
            m_a = (s1[:, :, h + 1 : n_frames - h + 1] - s1[:, :, : n_frames - 2 * h]) / (h + 1.0)
            q_a = (s2[:, h + 1 : n_frames - h + 1] - s2[:, : n_frames - 2 * h]) / (h + 1.0)
            m_b = (s1[:, :, 2 * h + 1 :] - s1[:, :, h : n_frames - h]) / (h + 1.0)
            q_b = (s2[:, 2 * h + 1 :] - s2[:, h : n_frames - h]) / (h + 1.0)
            flat_window[l, h : n_frames - h, part] = _phop_from_sums(m_a, q_a, m_b, q_b)[0]
        if p_c is None or n_frames < 3:
            continue
        # Iterative, first split: A = [0, t], B = [t, F-1] for t = 1 .. F-2.
        m_a = s1[:, :, 2:n_frames] / (t + 1.0)
        q_a = s2[:, 2:n_frames] / (t + 1.0)
        m_b = (s1[:, :, n_frames : n_frames + 1] - s1[:, :, 1 : n_frames - 1]) / (n_frames - t)
        q_b = (s2[:, n_frames : n_frames + 1] - s2[:, 1 : n_frames - 1]) / (n_frames - t)
        p = _phop_from_sums(m_a, q_a, m_b, q_b)[0]  # (F-2, b)
        best = p.argmax(axis=0)  # the first frame at the maximum
        p_star = p[best, np.arange(p.shape[1])]
        (hops,) = np.nonzero(p_star >= p_c)
        if hops.size:
            rows = np.ascontiguousarray(x[:, 0, :, hops].transpose(1, 0, 2))  # (3, M, F)
            iterative[l, part.start + hops] = _iterative_rows(rows, p_c, int(t_f_frames), best[hops] + 1, p_star[hops])
    if iterative is not None:
        iterative = np.swapaxes(iterative.reshape(*shape[:-2], n, n_frames), -1, -2)
    return window, iterative


def _iterative_rows(
    rows: np.ndarray, p_c: float, t_f_frames: int, t_star: np.ndarray, p_star: np.ndarray
) -> np.ndarray:
    """The recursion on trajectories ``rows`` (3, M, F) whose first split is at frames ``t_star`` (M,) with
    values ``p_star``; returns their labels (M, F)."""
    n_rows, n_frames = rows.shape[1:]
    labels = np.zeros((n_rows, n_frames))
    s1, s2 = _cumulative(rows, axis=1)  # (3, M, F+1), (M, F+1)
    frames = np.arange(n_frames)
    boundary = np.zeros((n_rows, n_frames), dtype=bool)
    boundary[:, 0] = boundary[:, -1] = True
    every = np.arange(n_rows)
    hops_row, hops_frame, hops_value = [every], [t_star], [p_star]
    # Children [a, t* - 1] and [t* + 1, b]: t* - 1, t*, t* + 1 become segment ends.
    for offset in (-1, 0, 1):
        boundary[every, t_star + offset] = True
    active = every
    while active.size:
        bnd = boundary[active]
        s1a, s2a = s1[:, active], s2[active]
        # a(t): last boundary at or before t; b(t): first boundary at or after t.
        a = np.maximum.accumulate(np.where(bnd, frames, 0), axis=1)
        b = np.flip(np.minimum.accumulate(np.flip(np.where(bnd, frames, n_frames - 1), axis=1), axis=1), axis=1)
        n_a = frames - a + 1.0
        n_b = b - frames + 1.0
        m_a = (s1a[:, :, 1:] - np.take_along_axis(s1a, a[None], axis=2)) / n_a
        q_a = (s2a[:, 1:] - np.take_along_axis(s2a, a, axis=1)) / n_a
        m_b = (np.take_along_axis(s1a, b[None] + 1, axis=2) - s1a[:, :, :n_frames]) / n_b
        q_b = (np.take_along_axis(s2a, b + 1, axis=1) - s2a[:, :n_frames]) / n_b
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
        for offset in (-1, 0, 1):
            boundary[row, frame + offset] = True
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
    half_window = max(1, int(round(0.5 * settings["window"] / context.interval)))
    p_c = settings["p_c"] if settings["iterative"] else None
    window, iterative = phop_both(positions, half_window, p_c, frames_of(settings["t_f"], context.interval))
    return {"phop": window} if iterative is None else {"phop": window, "phop_iterative": iterative}


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
