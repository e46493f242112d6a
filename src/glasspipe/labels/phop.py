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
running sums along the frame axis (shared by both forms); the first split of the iterative form is computed
for a whole block, its two children for all hopping trajectories of the block at once on contiguous arrays,
and each deeper level of the recursion handles every still-open segment of those trajectories in one flat
array. Everything is float64 (the tests compare with brute-force loops to 1e-10).
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


def _cumulative(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (3, F, b) -> S1 (3, F+1, b) with S1[k] = sum_{f<k} x_f, and S2 (F+1, b) with S2[k] = sum_{f<k} |x_f|^2.

    The running sums are a loop over the frames, each step adding one frame of every particle at once: about
    twice as fast as numpy.cumsum along the middle axis.
    """
    n_frames, width = x.shape[1], x.shape[2]
    s1 = np.empty((3, n_frames + 1, width))
    s1[:, 0] = 0.0
    s1[:, 1:] = x
    s2 = np.empty((n_frames + 1, width))
    s2[0] = 0.0
    np.einsum("ijk,ijk->jk", x, x, out=s2[1:])
    for f in range(2, n_frames + 1):
        s1[:, f] += s1[:, f - 1]
        s2[f] += s2[f - 1]
    return s1, s2


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sum over the first axis (x, y, z) of u * v, one pass (einsum)."""
    return np.einsum("i...,i...->...", u, v)


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
        iterative = np.zeros((int(np.prod(shape[:-2], dtype=np.int64)), n_frames, n))  # (L, F, N): contiguous frames
    if h is None and (p_c is None or n_frames < 3):
        return window, None if iterative is None else iterative.reshape(shape)
    flat_window = None if window is None else window.reshape(-1, n_frames, n)
    for l, part, x in _blocks(positions):
        s1, s2 = _cumulative(x[:, 0])  # (3, F+1, b), (F+1, b)
        if h is not None:
            flat_window[l, h : n_frames - h, part] = _window_block(s1, s2, h)
        if p_c is None or n_frames < 3:
            continue
        p = _first_split(s1, s2)  # (F-2, b): U = [0, t], V = [t, F-1] for t = 1 .. F-2
        best = p.argmax(axis=0)  # the first frame at the maximum
        p_star = p[best, np.arange(p.shape[1])]
        (hops,) = np.nonzero(p_star >= p_c)
        if hops.size:
            # Cumulative sums of the hopping trajectories, one row each: (3, M, F+1) and (M, F+1).
            rows1 = np.ascontiguousarray(s1[:, :, hops].transpose(0, 2, 1))
            rows2 = np.ascontiguousarray(s2[:, hops].T)
            labels = _recursion(rows1, rows2, p_c, int(t_f_frames), best[hops] + 1, p_star[hops])  # (M, F)
            iterative[l][:, part.start + hops] = labels.T
    if iterative is not None:
        iterative = iterative.reshape(shape)
    return window, iterative


def _window_block(s1: np.ndarray, s2: np.ndarray, h: int) -> np.ndarray:
    """Sliding-window p_hop at t = h .. F-1-h from cumulative sums s1 (3, F+1, b), s2 (F+1, b): (F-2h, b).

    With n = h + 1 frames per window, S_X and Q_X the sums of r and |r|^2 over window X:
    n^2 <|r - m_B|^2>_A = n Q_A - 2 S_A.S_B + |S_B|^2 (and A <-> B), so p_hop = sqrt(product) / n^2. The window
    sums W[t] over frames t..t+h are formed once: S_A(t) = W[t - h], S_B(t) = W[t]; |W|^2 is shared as well.
    """
    n_frames = s2.shape[0] - 1
    n = h + 1
    m = n_frames - 2 * h
    w1 = s1[:, n:] - s1[:, : n_frames + 1 - n]  # (3, F-h, b)
    w2 = s2[n:] - s2[: n_frames + 1 - n]  # (F-h, b)
    g = _dot(w1, w1)  # |W|^2
    cross = _dot(w1[:, :m], w1[:, h:])  # S_A . S_B
    cross *= 2.0
    a_about_b = n * w2[:m]
    a_about_b -= cross
    a_about_b += g[h:]
    b_about_a = n * w2[h:]
    b_about_a -= cross
    b_about_a += g[:m]
    np.maximum(a_about_b, 0.0, out=a_about_b)
    np.maximum(b_about_a, 0.0, out=b_about_a)
    a_about_b *= b_about_a
    np.sqrt(a_about_b, out=a_about_b)
    a_about_b *= 1.0 / (n * n)
    return a_about_b


def _first_split(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """p(t) of the whole window split at t = 1 .. F-2 (U = [0, t], V = [t, F-1]): (F-2, b)."""
    n_frames = s2.shape[0] - 1
    t = np.arange(1, n_frames - 1, dtype=np.float64)[:, None]
    inv_a, inv_b = 1.0 / (t + 1.0), 1.0 / (n_frames - t)
    sum_a, q_a = s1[:, 2:n_frames], s2[2:n_frames]
    sum_b = s1[:, n_frames : n_frames + 1] - s1[:, 1 : n_frames - 1]
    q_b = s2[n_frames : n_frames + 1] - s2[1 : n_frames - 1]
    cross = _dot(sum_a, sum_b)
    cross *= 2.0 * inv_a * inv_b
    a_about_b = q_a * inv_a
    a_about_b -= cross
    a_about_b += _dot(sum_b, sum_b) * (inv_b * inv_b)
    b_about_a = q_b * inv_b
    b_about_a -= cross
    b_about_a += _dot(sum_a, sum_a) * (inv_a * inv_a)
    np.maximum(a_about_b, 0.0, out=a_about_b)
    np.maximum(b_about_a, 0.0, out=b_about_a)
    a_about_b *= b_about_a
    return np.sqrt(a_about_b, out=a_about_b)


def _first_children(s1, s2, p_c, t_star, hops_row, hops_frame, hops_value):
    """Level one of the recursion: the children [0, t* - 1] and [t* + 1, F - 1] of every row's first split, p(t)
    for t = 1 .. F - 2 in (M, F - 2) arrays (the segment ends a, b per row and side). Appends the hops found
    to the lists and returns the segments (row, a, b) of the next level."""
    n_rows, n_frames = s2.shape[0], s2.shape[1] - 1
    rows = np.arange(n_rows)[:, None]
    t = np.arange(1, n_frames - 1)[None, :]
    ts = t_star[:, None]
    left = t < ts
    a = np.where(left, 0, ts + 1)
    b = np.where(left, ts - 1, n_frames - 1)
    # Sums over U = [a, t] and V = [t, b]: S[t + 1] - S[a] and S[b + 1] - S[t] (S[0] = 0 on the left side).
    sum_a = s1[:, :, 2:n_frames] - np.where(left, s1[:, :, :1], s1[:, rows, ts + 1])
    sum_b = np.where(left, s1[:, rows, ts], s1[:, :, n_frames : n_frames + 1]) - s1[:, :, 1 : n_frames - 1]
    with np.errstate(divide="ignore", invalid="ignore"):  # frames outside both children: masked below
        inv_a = 1.0 / (t - a + 1.0)
        inv_b = 1.0 / (b - t + 1.0)
        q_a = (s2[:, 2:n_frames] - np.where(left, s2[:, :1], s2[rows, ts + 1])) * inv_a
        q_b = (np.where(left, s2[rows, ts], s2[:, n_frames : n_frames + 1]) - s2[:, 1 : n_frames - 1]) * inv_b
        cross = _dot(sum_a, sum_b) * (2.0 * inv_a * inv_b)
        a_about_b = q_a - cross + _dot(sum_b, sum_b) * (inv_b * inv_b)
        b_about_a = q_b - cross + _dot(sum_a, sum_a) * (inv_a * inv_a)
        p = np.sqrt(np.maximum(a_about_b, 0.0) * np.maximum(b_about_a, 0.0))
    p[(t <= a) | (t >= b)] = -np.inf  # t* - 1, t*, t* + 1 and the frames of a side without interior
    next_row, next_a, next_b = [], [], []
    for side in (left, ~left):
        masked = np.where(side, p, -np.inf)
        best = masked.argmax(axis=1)  # the first frame at the side's maximum
        value = masked[rows[:, 0], best]
        (hit,) = np.nonzero(value >= p_c)
        frame = best[hit] + 1
        hops_row.append(hit)
        hops_frame.append(frame)
        hops_value.append(value[hit])
        seg_a, seg_b = a[hit, best[hit]], b[hit, best[hit]]
        next_row += [hit, hit]
        next_a += [seg_a, frame + 1]
        next_b += [frame - 1, seg_b]
    return np.concatenate(next_row), np.concatenate(next_a), np.concatenate(next_b)


def _recursion(
    s1: np.ndarray, s2: np.ndarray, p_c: float, t_f_frames: int, t_star: np.ndarray, p_star: np.ndarray
) -> np.ndarray:
    """The recursion on M trajectories given by their cumulative sums s1 (3, M, F+1), s2 (M, F+1), whose first
    split is at frames ``t_star`` (M,) with values ``p_star``; returns their labels (M, F).

    Only open segments are visited: each level evaluates p at every interior frame of every segment still
    open, the segments of all trajectories side by side in one flat array (window sums gathered from the
    cumulative sums), and a segment whose maximum is below p_c is closed for good.
    """
    n_rows, n_frames = s2.shape[0], s2.shape[1] - 1
    stride = n_frames + 1
    flat1 = s1.reshape(3, -1)
    flat2 = s2.reshape(-1)
    every = np.arange(n_rows)
    t_star = np.asarray(t_star, dtype=np.int64)
    hops_row, hops_frame, hops_value = [every], [t_star], [np.asarray(p_star, dtype=np.float64)]
    # The children [0, t* - 1] and [t* + 1, F - 1] of the first split cover almost every frame of the row: they
    # are evaluated on contiguous (M, F - 2) arrays; the deeper levels, on fewer frames, segment by segment.
    seg_row, seg_a, seg_b = _first_children(s1, s2, p_c, t_star, hops_row, hops_frame, hops_value)
    while True:
        keep = seg_b - seg_a >= 2
        seg_row, seg_a, seg_b = seg_row[keep], seg_a[keep], seg_b[keep]
        if seg_row.size == 0:
            break
        length = seg_b - seg_a - 1  # interior frames of each segment
        offsets = np.cumsum(length) - length
        seg_of = np.repeat(np.arange(seg_row.size), length)
        a, b = seg_a[seg_of], seg_b[seg_of]
        t = np.arange(seg_of.size) - offsets[seg_of] + a + 1
        base = seg_row[seg_of] * stride
        at_t, after_t, at_a, after_b = base + t, base + t + 1, base + a, base + b + 1
        inv_a = 1.0 / (t - a + 1.0)
        inv_b = 1.0 / (b - t + 1.0)
        sum_a = flat1[:, after_t] - flat1[:, at_a]
        sum_b = flat1[:, after_b] - flat1[:, at_t]
        cross = _dot(sum_a, sum_b) * (2.0 * inv_a * inv_b)
        a_about_b = (flat2[after_t] - flat2[at_a]) * inv_a - cross + _dot(sum_b, sum_b) * (inv_b * inv_b)
        b_about_a = (flat2[after_b] - flat2[at_t]) * inv_b - cross + _dot(sum_a, sum_a) * (inv_a * inv_a)
        p = np.sqrt(np.maximum(a_about_b, 0.0) * np.maximum(b_about_a, 0.0))
        seg_max = np.maximum.reduceat(p, offsets)[seg_of]
        hit = np.flatnonzero((p == seg_max) & (seg_max >= p_c))
        if hit.size == 0:
            break
        _, first = np.unique(seg_of[hit], return_index=True)  # the first frame at each segment's maximum
        chosen = hit[first]
        split, frame = seg_of[chosen], t[chosen]
        hops_row.append(seg_row[split])
        hops_frame.append(frame)
        hops_value.append(p[chosen])
        seg_row = np.concatenate([seg_row[split], seg_row[split]])
        seg_a, seg_b = np.concatenate([seg_a[split], frame + 1]), np.concatenate([frame - 1, seg_b[split]])
    labels = np.zeros((n_rows, n_frames))
    row, frame, value = (np.concatenate(v) for v in (hops_row, hops_frame, hops_value))
    for offset in range(-t_f_frames, t_f_frames + 1):  # a loop over frame offsets, not over particles
        target = frame + offset
        ok = (target >= 0) & (target < n_frames)
        np.maximum.at(labels, (row[ok], target[ok]), value[ok])
    return labels


# --- registry --------------------------------------------------------------------------------------
from glasspipe.config import ConfigError, dense_windows, is_imported, label_time_scale  # noqa: E402
from glasspipe.labels.registry import DENSE_GRID, Context, LabelSpec, register  # noqa: E402

# The section labels.phop; each default is declared here and nowhere else.
SETTINGS = {
    "enabled": {
        "type": "boolean",
        "default": False,
        "description": "p_hop on the isoconf dense window (needs isoconf.dense_window)",
    },
    "time_unit": {"enum": ["tau", "tau_alpha"], "default": "tau", "description": "unit of window and t_f"},
    "window": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 10.0,
        "description": "full window w of the sliding p_hop: A = [t - w/2, t], B = [t, t + w/2]",
    },
    "iterative": {"type": "boolean", "default": True, "description": "also the iterative p_hop (thesis eq. 2.15)"},
    "p_c": {
        "type": "number",
        "minimum": 0,
        "default": 0.16,
        "description": "iterative p_hop: split while p_hop* >= p_c (sigma_AA^2; the RMSD plateau, 0.16 at T = 0.43)",
    },
    "t_f": {
        "type": "number",
        "minimum": 0,
        "default": 5.0,
        "description": "iterative p_hop: frames within t_f of a hop get its p_hop*",
    },
}


def _check(config: dict) -> None:
    """The p_hop window must lie inside the isoconf dense window and span at least 2 frames per half."""
    section = config.get("labels", {}).get("phop", {})
    if not section.get("enabled") or is_imported(config):
        return
    for temperature, interval, length, where in dense_windows(config):
        w = section["window"] * label_time_scale(config, "phop", temperature)
        if w / 2 < interval * (1 - 1e-9):
            raise ConfigError(
                f"config key 'labels.phop.window' = {section['window']} ({w:g} tau) is shorter than two "
                f"dense frames {where}"
            )
        if w > length * (1 + 1e-9):
            raise ConfigError(
                f"config key 'labels.phop.window' = {section['window']} ({w:g} tau) exceeds the dense window {where}"
            )


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
        settings=SETTINGS,
        check=_check,
    )
)
