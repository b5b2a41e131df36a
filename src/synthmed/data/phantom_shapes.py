"""Resolution-free shape and texture helpers for the built-in phantoms.

Anatomy is drawn on normalised coordinates (u right, v down, both in [-1, 1]) and only rasterised
at the end, so one patient's anatomy is the same at every image size and the random draws never
depend on the size. The brain helpers take the per-patient anatomy dict drawn by
``synthmed.data.phantoms`` (argument ``a``) and a section height ``z`` in the same units as u, v.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates of pixel centres.

    Returns:
        (u, v), each (size, size) float64; u grows to the right, v downwards.
    """
    c = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))


@dataclass(frozen=True)
class SmoothField:
    """A smooth random field: a sum of random plane waves (random Fourier features).

    Drawing the waves once and evaluating them at any size (and slice position z) keeps a
    patient's bias field or texture identical across resolutions and smooth across slices.
    """

    fx: np.ndarray
    fy: np.ndarray
    fz: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    @classmethod
    def draw(
        cls, rng: np.random.Generator, n_terms: int = 12, freq: tuple[float, float] = (0.3, 1.5)
    ) -> SmoothField:
        """Draws waves with frequencies (cycles per normalised unit) in ``freq``."""
        f = rng.uniform(*freq, n_terms)
        ang = rng.uniform(0.0, 2.0 * np.pi, n_terms)
        fz = rng.normal(0.0, 1.0, n_terms) * f
        phase = rng.uniform(0.0, 2.0 * np.pi, n_terms)
        amp = rng.normal(0.0, 1.0, n_terms)
        amp = amp / np.sqrt(0.5 * np.sum(amp**2))  # unit variance over space
        return cls(f * np.cos(ang), f * np.sin(ang), fz, phase, amp)

    def __call__(self, size: int, z: float = 0.0) -> np.ndarray:
        """Evaluates the field on the pixel grid; (size, size) float64, roughly unit std.

        Uses cos(a + b) = cos a cos b - sin a sin b so the cost is one small contraction. It is
        an einsum rather than a BLAS matmul because multithreaded BLAS on tiny products stalls
        badly when other processes share the cores.
        """
        c = (np.arange(size) + 0.5) / size * 2.0 - 1.0
        ax = 2.0 * np.pi * np.outer(self.fx, c) + (self.phase + 2.0 * np.pi * self.fz * z)[:, None]
        by = 2.0 * np.pi * np.outer(self.fy, c)
        rows = np.concatenate([np.cos(by) * self.amp[:, None], -np.sin(by) * self.amp[:, None]])
        cols = np.concatenate([np.cos(ax), np.sin(ax)])
        return np.einsum("kh,kw->hw", rows, cols)


def periodic_series(
    rng: np.random.Generator, n_terms: int, amp: float, k0: int = 2, decay: float = 1.0
) -> np.ndarray:
    """Draws coefficients of a random periodic function of an angle.

    Returns:
        (n_terms, 3) rows of (harmonic k, amplitude, phase), amplitude ~ amp / k**decay.
    """
    k = np.arange(k0, k0 + n_terms, dtype=np.float64)
    a = rng.normal(0.0, 1.0, n_terms) * amp / k**decay
    return np.stack([k, a, rng.uniform(0.0, 2.0 * np.pi, n_terms)], axis=1)


def eval_series(coef: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Evaluates ``periodic_series`` coefficients at angles ``theta`` (any shape)."""
    out = np.zeros_like(theta, dtype=np.float64)
    for k, a, ph in coef:
        out += a * np.cos(k * theta + ph)
    return out


def ellipse_coords(
    u: np.ndarray, v: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], rot: float
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised radius and angle in a rotated ellipse's frame (radius 1 on the ellipse)."""
    du, dv = u - centre[0], v - centre[1]
    c, s = np.cos(rot), np.sin(rot)
    x = (c * du + s * dv) / axes[0]
    y = (-s * du + c * dv) / axes[1]
    return np.hypot(x, y), np.arctan2(y, x)


# ----------------------------------------------------------------------------- brain anatomy


def angular_lookup(table: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Evaluates a function of angle, tabulated on equally spaced angles from -pi, at ``theta``.

    Tabulating first costs a few table look-ups per pixel instead of one cosine per harmonic.
    """
    grid = np.linspace(-np.pi, np.pi, len(table), endpoint=False)
    return np.interp(theta, grid, table, period=2.0 * np.pi)


def head_coords(a: dict, size: int, z: float) -> tuple[np.ndarray, ...]:
    """Brain-frame coordinates of every pixel for the axial section at height ``z``.

    Returns:
        rho (normalised radius, brain surface at 1, irregular outline), theta, and (xb, yb)
        with the smooth brain ellipse at radius 1, yb pointing to the back of the head.
    """
    u, v = pixel_grid(size)
    s = np.sqrt(max(1.0 - (z / 0.75) ** 2, 1e-3))  # sections shrink towards the vertex
    axes = (a["axes"][0] * s, a["axes"][1] * s)
    rho_e, theta = ellipse_coords(u, v, a["centre"], axes, a["rot"])
    grid = np.linspace(-np.pi, np.pi, 2048, endpoint=False)
    shape = 1.0 + eval_series(a["outline"], grid) + a["egg"] * np.sin(grid)
    rho = rho_e / angular_lookup(shape, theta) + 0.012 * a["wiggle"](size, z)
    return rho, theta, rho_e * np.cos(theta), rho_e * np.sin(theta)


def cortex_masks(a: dict, rho: np.ndarray, theta: np.ndarray, z: float) -> tuple[np.ndarray, ...]:
    """Folded cortex: narrow CSF-filled sulci cut into a grey ribbon over white matter.

    Gyri are a warped periodic pattern along the brain outline; each sulcus is a deep narrow
    spike of CSF, and the grey/white boundary follows it a cortical thickness deeper.

    Returns:
        sulcus mask and white-matter mask, both (S, S) bool.
    """
    grid = np.linspace(-np.pi, np.pi, 2048, endpoint=False)
    psi = a["n_gyri"] * grid + eval_series(a["gyri_warp"], grid) + 14.0 * z
    c = 0.5 - 0.5 * np.cos(psi)  # 1 at the bottom of a sulcus, 0 on a gyral crown
    n = a["n_gyri"]
    depth = a["sulcus_depth"] * a["sulcus_var"][np.floor(psi / (2.0 * np.pi)).astype(int) % n]
    # sulci run obliquely, each its own way: shift the angle with depth below the surface;
    # the tilt is interpolated between sulci so gyral crowns stay continuous
    knots = np.append(a["sulcus_tilt"][:n], a["sulcus_tilt"][0])
    tilt = np.interp((psi / (2.0 * np.pi) - 0.5) % n, np.arange(n + 1), knots)
    theta = theta + angular_lookup(tilt, theta) * (1.0 - rho)
    sulcus = rho > angular_lookup(1.0 - depth * c**10, theta)
    white = rho < angular_lookup(1.0 - a["gm_thickness"] - depth * c**3, theta)
    return sulcus, white


def deep_structures(a: dict, xb: np.ndarray, yb: np.ndarray, size: int, z: float) -> tuple:
    """Butterfly-shaped lateral ventricles with a third ventricle, and deep grey nuclei.

    Each lateral ventricle is a frontal horn and a body/atrium ellipse, diverging to the front
    and back; they shrink away from the mid-ventricular level ``z`` ~ 0.03 and vanish beyond.

    Returns:
        ventricle mask and deep-grey-matter mask, (S, S) bool.
    """
    level = np.sqrt(max(0.0, 1.0 - ((z - 0.03) / 0.32) ** 2))
    vent = np.zeros(xb.shape, dtype=bool)
    deep = np.zeros(xb.shape, dtype=bool)
    if level < 0.05:
        return vent, deep
    k = a["ventricles"] * level
    half = 0.4 * (0.85 + 0.15 * k)
    y = yb - 0.02
    ends = np.sqrt(np.clip(1.0 - (y / half) ** 2, 0.0, None))  # rounded horn tips
    # each lateral ventricle is a crescent: close to the midline at the body, diverging
    # forwards (frontal horn) and backwards (atrium), which gives the butterfly outline
    centre = 0.065 + 0.6 * y**2
    width = (
        0.04
        + 0.03 * np.exp(-(((y + 0.24) / 0.1) ** 2))
        + 0.045 * np.exp(-(((y - 0.27) / 0.11) ** 2))
    )
    width = width * k * ends * (1.0 + 0.25 * a["vent_field"](size, z))
    vent = (np.abs(np.abs(xb) - centre) < width) & (np.abs(xb) > 0.015)
    for s in (-1.0, 1.0):
        deep |= ellipse_coords(xb, yb, (s * 0.34, 0.0), (0.08, 0.18), -s * 0.3)[0] < level
        deep |= ellipse_coords(xb, yb, (s * 0.11, 0.17), (0.08, 0.11), 0.0)[0] < level
    vent |= ellipse_coords(xb, yb, (0.0, 0.03), (0.018 * k, 0.09), 0.0)[0] < 1.0
    return vent, deep


def tumour_radius(a: dict, xb: np.ndarray, yb: np.ndarray, size: int, z: float) -> np.ndarray:
    """Normalised radius of the tumour (its irregular boundary at 1) for section ``z``.

    The lesion is an ellipsoid-ish blob; sections away from its centre ``tumour_z`` cut it
    smaller, so slices of one patient show the same tumour at slightly different sizes.
    """
    ax, ay = a["axes"]
    dx, dy = (xb - a["tumour_pos"][0]) * ax, (yb - a["tumour_pos"][1]) * ay
    frac = max(1.0 - ((z - a["tumour_z"]) / a["tumour_h"]) ** 2, 0.0)
    radius = a["tumour_r"] * np.sqrt(frac)
    if radius <= 0.0:
        return np.full(xb.shape, np.inf)
    grid = np.linspace(-np.pi, np.pi, 2048, endpoint=False)
    shape = np.clip(1.0 + eval_series(a["tumour_shape"], grid), 0.6, 1.6)
    rho = np.hypot(dx, dy) / (radius * angular_lookup(shape, np.arctan2(dy, dx)))
    return rho + 0.1 * a["tumour_field"](size, z)


# ----------------------------------------------------------------------------- vessel trees


@dataclass(frozen=True)
class Vessel:
    """One unbranched vessel: centreline in normalised coordinates plus per-point width."""

    points: np.ndarray  # (n, 2) normalised (u, v)
    widths: np.ndarray  # (n,) full width in normalised units
    darkness: float  # peak darkening of the background, 0..1
    level: int  # branching depth; rasterised per level so thin twigs never cut thick trunks


@dataclass(frozen=True)
class TreeLimits:
    """Where and how far vessels grow: inside the FOV, outside the foveal avascular zone."""

    fov_radius: float
    macula: tuple[float, float]
    fovea_radius: float
    max_depth: int = 3
    min_width: float = 0.006
    step: float = 0.03
    branch_spacing: float = 0.3  # mean distance between side branches on a trunk


def _paths(
    rng: np.random.Generator, rows: np.ndarray, limits: TreeLimits, depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centrelines of many vessels at once: a turn that eases off plus a small random walk.

    Args:
        rows: (k, 7) vessels as (u, v, heading, turn, width, length, darkness).

    Returns:
        points (k, n, 2), headings (k, n), and how many leading points of each stay in the FOV
        and out of the foveal avascular zone (k,).
    """
    length = rows[:, 5]
    n_i = np.maximum(2, (length / limits.step).astype(int) + 1)
    n = int(n_i.max())
    s = np.arange(n)[None, :] * (length / (n_i - 1))[:, None]
    bend = rows[:, 3:4] * (1.0 - np.exp(-3.0 * s / length[:, None])) / (1.0 - np.exp(-3.0))
    ang = rows[:, 2:3] + bend + np.cumsum(rng.normal(0.0, 0.035, (len(rows), n)), axis=1)
    step = (length / (n_i - 1))[:, None]
    pts = np.zeros((len(rows), n, 2))
    pts[:, 1:, 0] = np.cumsum(np.cos(ang[:, :-1]) * step, axis=1)
    pts[:, 1:, 1] = np.cumsum(np.sin(ang[:, :-1]) * step, axis=1)
    pts += rows[:, None, 0:2]
    bad = np.arange(n)[None, :] >= n_i[:, None]
    bad |= (pts**2).sum(-1) > (limits.fov_radius * 0.99) ** 2
    fovea = limits.fovea_radius * (1.0 if depth > 0 else 1.8)
    bad |= ((pts - np.asarray(limits.macula)) ** 2).sum(-1) < fovea**2
    n_valid = np.where(bad.any(axis=1), bad.argmax(axis=1), n)
    return pts, ang, n_valid


def _children(
    rng: np.random.Generator,
    rows: np.ndarray,
    pts: np.ndarray,
    ang: np.ndarray,
    widths: np.ndarray,
    n_valid: np.ndarray,
    rate: float,
) -> np.ndarray:
    """Side branches: where they leave their parent, at what angle, how thick and how long.

    Also lowers the parent's width after each branch point in place (roughly Murray's law).
    """
    counts = rng.poisson(rows[:, 5] * rate) * (n_valid >= 6)
    parent = np.repeat(np.arange(len(rows)), counts)
    lo, hi = (0.15 * n_valid[parent]).astype(int), n_valid[parent] - 2
    idx = lo + (rng.random(len(parent)) * (hi - lo)).astype(int)
    child_w = widths[parent, idx] * rng.uniform(0.5, 0.75, len(parent))
    drop = np.ones_like(widths)
    np.multiply.at(drop, (parent, idx), 0.93)
    widths *= np.cumprod(drop, axis=1)
    side = np.where(rng.random(len(parent)) < 0.5, -1.0, 1.0)
    length = np.minimum(
        rows[parent, 5] * rng.uniform(0.35, 0.7, len(parent)),
        child_w * rng.uniform(30.0, 50.0, len(parent)),
    )
    return np.column_stack(
        [
            pts[parent, idx],
            ang[parent, idx] + side * rng.uniform(0.45, 1.1, len(parent)),
            side * rng.uniform(-0.8, 0.6, len(parent)),
            child_w,
            length,
            rows[parent, 6] * rng.uniform(0.85, 1.0, len(parent)),
        ]
    )


def grow_tree(rng: np.random.Generator, roots: np.ndarray, limits: TreeLimits) -> list[Vessel]:
    """Grows vessel trees from their roots, one branching level at a time (vectorised).

    Width tapers along each vessel and drops at branch points; side branches leave at 25-65
    degrees, thinner and shorter; growth stops at ``max_depth``, ``min_width``, the FOV edge
    and the fovea.

    Args:
        roots: (k, 7) trunks as (u, v, heading, turn, width, length, darkness).
    """
    vessels: list[Vessel] = []
    rows = np.asarray(roots, dtype=np.float64)
    for depth in range(limits.max_depth + 1):
        if len(rows) == 0:
            break
        pts, ang, n_valid = _paths(rng, rows, limits, depth)
        n_i = np.maximum(2, (rows[:, 5] / limits.step).astype(int) + 1)
        t = np.minimum(np.arange(pts.shape[1])[None, :] / (n_i - 1)[:, None], 1.0)
        widths = rows[:, 4:5] * (1.0 - 0.35 * t)
        nxt = np.zeros((0, 7))
        if depth < limits.max_depth:
            rate = 1.0 / (limits.branch_spacing * (1.0 + 0.4 * depth))
            nxt = _children(rng, rows, pts, ang, widths, n_valid, rate)
        for k in np.flatnonzero(n_valid >= 2):
            m = n_valid[k]
            vessels.append(Vessel(pts[k, :m], widths[k, :m], float(rows[k, 6]), depth))
        rows = nxt[nxt[:, 4] >= limits.min_width]
    return vessels


def _densify(vessels: list[Vessel], size: int, spacing: float = 0.35) -> np.ndarray:
    """Samples all centrelines every ``spacing`` pixels in one vectorised pass.

    Returns:
        (m, 5) rows of (x_px, y_px, width_px, darkness, level).
    """
    pts = np.concatenate([v.points for v in vessels]) * (size / 2.0) + (size / 2.0 - 0.5)
    widths = np.concatenate([v.widths for v in vessels]) * (size / 2.0)
    which = np.repeat(np.arange(len(vessels)), [len(v.points) for v in vessels])
    attrs = np.array([[v.darkness, v.level] for v in vessels])[which]
    ok = which[:-1] == which[1:]  # segments never join two different vessels
    p0, seg, w0, dw = pts[:-1][ok], np.diff(pts, axis=0)[ok], widths[:-1][ok], np.diff(widths)[ok]
    count = np.maximum(1, np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / spacing)).astype(int)
    idx = np.repeat(np.arange(len(seg)), count)
    t = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    t = t / count[idx]
    xy = p0[idx] + t[:, None] * seg[idx]
    return np.column_stack([xy, w0[idx] + t * dw[idx], attrs[:-1][ok][idx]])


def rasterise_vessels(
    vessels: list[Vessel], size: int, min_label_width: float = 0.65
) -> tuple[np.ndarray, np.ndarray]:
    """Turns vessel centrelines into a binary mask and a smooth darkening profile.

    Per branching level, a Euclidean distance transform finds each pixel's nearest centreline
    sample (sub-pixel exact), which is O(pixels) instead of O(pixels x segments). The mask holds
    pixels within half a width (at least half a pixel, so thin vessels stay 8-connected lines);
    the darkening is a Gaussian-like cross-section whose half maximum sits on the mask edge.

    Returns:
        mask (size, size) bool and darkening (size, size) float64 in [0, 1].
    """
    mask = np.zeros((size, size), dtype=bool)
    dark = np.zeros((size, size))
    if not vessels:
        return mask, dark
    samples = _densify(vessels, size)
    ix, iy = np.rint(samples[:, 0]).astype(int), np.rint(samples[:, 1]).astype(int)
    inside = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
    flat_mask, flat_dark = mask.reshape(-1), dark.reshape(-1)
    level = np.minimum(samples[:, 4], 2)  # twigs of levels 2+ rarely touch: one pass for all
    for lev in np.unique(level[inside]):
        keep = inside & (level == lev)
        flat = iy[keep] * size + ix[keep]
        store = np.zeros((4, size * size))
        store[:, flat] = samples[keep, :4].T
        centre = np.ones(size * size, dtype=bool)
        centre[flat] = False
        edt, near = ndimage.distance_transform_edt(
            centre.reshape(size, size), return_distances=True, return_indices=True
        )
        # only pixels near a centreline can be touched; skip the rest of the image
        band = np.flatnonzero(edt.ravel() < samples[keep, 2].max() * 1.5 + 2.0)
        qx, qy, w, d0 = store[:, near[0].ravel()[band] * size + near[1].ravel()[band]]
        r = np.maximum(w / 2.0, 0.5)
        dist2 = ((band % size - qx) ** 2 + (band // size - qy) ** 2) / r**2
        # a vessel thinner than ~2/3 pixel covers too little of any pixel to be labelled, as
        # when a finer vessel map is downsampled; it stays as a faint line in the image
        flat_mask[band] |= (dist2 < 1.0) & (w >= min_label_width)
        flat_mask[flat[samples[keep, 2] >= min_label_width]] = True  # keeps thin lines unbroken
        profile = np.exp(-np.log(2.0) * dist2) * np.clip(w, 0.25, 1.0)
        reflex = 1.0 - 0.35 * np.exp(-16.0 * dist2) * (w > 5.0)  # arterial light reflex
        flat_dark[band] = np.maximum(flat_dark[band], d0 * profile * reflex)
    return mask, dark
