"""Built-in labelled phantoms, so the demo and the tests need no download.

Two deterministic generators, chosen by name from ``PHANTOMS``:

- ``fundus``: colour fundus photographs (3, S, S) with a vessel map, in the spirit of DRIVE
  (Staal et al., IEEE TMI 2004): circular field of view, optic disc, branching vessel tree
  with two temporal arcades, dark macula, radial illumination fall-off, blur and noise.
- ``brain``: FLAIR-like axial MRI slices (1, S, S) labelled background / CSF / grey matter /
  white matter / tumour, with one lesion per image whose type (solid, ring, diffuse) is the
  image-level ``class_id``; bias field and Rician noise as in BrainWeb (Cocosco et al. 1997).
- ``brain3d``: the same anatomy as (1, S, S, S) volumes.

Anatomy is drawn from ``default_rng([seed, kind, patient])`` and noise from
``default_rng([seed, kind, patient, image + 1])``, so adding patients or images never changes
earlier ones, and a patient's anatomy is the same at every image size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from synthmed.data.phantom_shapes import (
    SmoothField,
    TreeLimits,
    Vessel,
    cortex_masks,
    deep_structures,
    ellipse_coords,
    grow_tree,
    head_coords,
    periodic_series,
    pixel_grid,
    rasterise_vessels,
    tumour_radius,
)
from synthmed.data.types import Item
from synthmed.errors import InputError
from synthmed.registry import Registry

PHANTOMS = Registry("phantom")

FUNDUS_LABEL_NAMES = ("background", "vessel")
BRAIN_LABEL_NAMES = ("background", "csf", "grey_matter", "white_matter", "tumour")
BRAIN_CLASS_NAMES = ("solid", "ring", "diffuse")

_SALT = {"fundus": 1, "brain": 2, "brain3d": 3}
_FOV_RADIUS = 0.93


def _check_args(n_patients: int, images_per_patient: int, size: int, seed: int) -> None:
    """Fails early with a readable message instead of an obscure numpy error later."""
    if n_patients < 0 or images_per_patient < 1:
        raise InputError("phantoms need n_patients >= 0 and images_per_patient >= 1")
    if not 16 <= size <= 2048:
        raise InputError(f"phantom size must be in 16..2048, got {size}")
    if seed < 0:
        raise InputError(f"phantom seed must be >= 0, got {seed}")


def _generate(
    kind: str,
    anatomy: Callable[[np.random.Generator, int], dict],
    render: Callable[[dict, int, int, int, np.random.Generator], Item],
    n_patients: int,
    images_per_patient: int,
    size: int,
    seed: int,
) -> list[Item]:
    """Shared patient/image loop: seeds, ids and sources are the same for every phantom."""
    _check_args(n_patients, images_per_patient, size, seed)
    items = []
    for p in range(n_patients):
        anat = anatomy(np.random.default_rng([seed, _SALT[kind], p]), p)
        for i in range(images_per_patient):
            rng = np.random.default_rng([seed, _SALT[kind], p, i + 1])
            item = render(anat, i, images_per_patient, size, rng)
            items.append(
                item.with_(
                    patient_id=f"{kind}-{p:03d}",
                    source=f"phantom:{kind}:p{p:03d}:i{i}",
                    meta={**item.meta, "seed": seed, "patient_index": p, "image_index": i},
                )
            )
    return items


# ----------------------------------------------------------------------------- fundus


def _fundus_tree(
    rng: np.random.Generator, disc: np.ndarray, macula: tuple[float, float], side: float
) -> list[Vessel]:
    """Vessels leaving the optic disc, each trunk as a vein plus a thinner, paler artery.

    Like a real retina: two temporal arcades arching round the macula, two smaller nasal
    trunks and a small macular branch.
    """
    t = -side  # +1 when the macula (temporal side) lies to the right of the disc
    a_t = 0.0 if t > 0 else np.pi
    limits = TreeLimits(_FOV_RADIUS, macula, fovea_radius=0.1)
    trunks = [  # heading, total turn, length, vein width (normalised units)
        (-np.pi / 2 + t * 0.35, t * 1.5, rng.uniform(1.5, 1.9), 0.034),
        (np.pi / 2 - t * 0.35, -t * 1.5, rng.uniform(1.5, 1.9), 0.034),
        (-np.pi / 2 - t * 0.55, -t * 0.5, rng.uniform(0.8, 1.1), 0.024),
        (np.pi / 2 + t * 0.55, t * 0.5, rng.uniform(0.8, 1.1), 0.024),
        (a_t + rng.uniform(-0.3, 0.3), 0.0, rng.uniform(0.3, 0.45), 0.012),
    ]
    roots = []
    for heading, turn, length, width in trunks:
        normal = np.array([-np.sin(heading), np.cos(heading)])
        order = rng.permutation([-1.0, 1.0])
        for k, (w_scale, darkness) in enumerate(
            [(1.0, rng.uniform(0.7, 0.85)), (0.72, rng.uniform(0.5, 0.65))]
        ):
            start = disc + normal * order[k] * 0.025 + rng.normal(0.0, 0.02, 2)
            roots.append(
                [
                    *start,
                    heading + rng.normal(0.0, 0.12),
                    turn * rng.uniform(0.8, 1.2),
                    width * w_scale * rng.uniform(0.9, 1.1),
                    length * rng.uniform(0.85, 1.05),
                    darkness,
                ]
            )
    roots = np.array(roots)
    # every trunk emerges from the centre of the disc, so the whole tree is one component
    stubs = [Vessel(np.stack([disc, r[:2]]), np.full(2, r[4]), float(r[6]), 0) for r in roots]
    return stubs + grow_tree(rng, roots, limits)


def _fundus_anatomy(rng: np.random.Generator, patient: int) -> dict:
    """Per-patient eye: disc side and position, pigmentation, illumination, vessel tree."""
    side = float(rng.choice([-1.0, 1.0]))
    disc = np.array([side * rng.uniform(0.38, 0.5), rng.uniform(-0.08, 0.08)])
    macula = (disc[0] - side * rng.uniform(0.62, 0.75), disc[1] + rng.uniform(-0.02, 0.08))
    tint = rng.uniform([0.92, 0.75, 0.6], [1.05, 1.25, 1.4])
    return {
        "side": side,
        "disc": disc,
        "disc_axes": (rng.uniform(0.1, 0.12), rng.uniform(0.11, 0.135)),
        "cup": (rng.uniform(0.3, 0.55), side * rng.uniform(0.0, 0.3)),
        "macula": macula,
        "macula_depth": rng.uniform(0.2, 0.4),
        "colour": np.array([0.86, 0.38, 0.16]) * tint * rng.uniform(0.75, 1.08),
        "gradient": rng.normal(0.0, 0.1, 2),
        "illum": SmoothField.draw(rng, 8, (0.2, 0.7)),
        "choroid": SmoothField.draw(rng, 60, (5.0, 12.0)),
        "choroid_amp": rng.uniform(0.01, 0.035),
        "noise": rng.uniform(0.008, 0.02),
        "vessels": _fundus_tree(rng, disc, macula, side),
    }


def _fundus_background(a: dict, size: int) -> np.ndarray:
    """Orange-red retina with vignetting, choroidal texture and a darker macula; (3, S, S)."""
    u, v = pixel_grid(size)
    r = np.hypot(u, v) / _FOV_RADIUS
    illum = (1.0 - 0.5 * r**2.5) * (1.0 + a["gradient"][0] * u + a["gradient"][1] * v)
    illum *= 1.0 + 0.06 * a["illum"](size)
    texture = a["choroid_amp"] * a["choroid"](size)
    dm2 = (u - a["macula"][0]) ** 2 + (v - a["macula"][1]) ** 2
    macula = a["macula_depth"] * np.exp(-dm2 / 0.16**2)
    img = np.empty((3, size, size))
    for c, (tex, mac) in enumerate([(1.0, 0.8), (1.6, 1.0), (1.6, 1.0)]):
        img[c] = a["colour"][c] * illum * (1.0 + tex * texture) * (1.0 - mac * macula)
    img += 0.05 * np.exp(-dm2 / 0.012**2)  # foveal reflex
    return img


def _add_disc(a: dict, img: np.ndarray) -> None:
    """Paints the bright yellowish optic disc with its paler cup onto ``img`` in place.

    Only a window around the disc is computed: it covers about 1% of the image.
    """
    size = img.shape[-1]
    (du, dv), (ax, ay) = a["disc"], a["disc_axes"]
    half = int(np.ceil(1.6 * max(ax, ay) * size / 2.0)) + 2
    ci, cj = int((dv + 1.0) * size / 2.0), int((du + 1.0) * size / 2.0)
    i0, i1, j0, j1 = (
        max(ci - half, 0),
        min(ci + half, size),
        max(cj - half, 0),
        min(cj + half, size),
    )
    u, v = pixel_grid(size)
    u, v = u[i0:i1, j0:j1], v[i0:i1, j0:j1]
    rho, theta = ellipse_coords(u, v, (du, dv), (ax, ay), 0.0)
    soft = max(0.1, 1.2 * (2.0 / size) / ax)  # about one pixel, in disc radii
    alpha = 1.0 / (1.0 + np.exp(np.clip((rho - 1.0 - 0.04 * np.cos(3 * theta)) / soft, -50, 50)))
    cup_r, cup_shift = a["cup"]
    cup = np.exp(
        -((ellipse_coords(u, v, (du - cup_shift * ax, dv), (ax, ay), 0.0)[0] / cup_r) ** 2)
    )
    bright = 0.9 + 0.15 * a["colour"][0]
    win = img[:, i0:i1, j0:j1]
    for c, (base, pale) in enumerate([(0.97, 0.03), (0.72, 0.15), (0.45, 0.2)]):
        disc = (base * (1.0 + 0.25 * cup) + pale * cup) * bright
        win[c] = win[c] * (1.0 - alpha) + disc * alpha


def _render_fundus(a: dict, i: int, n: int, size: int, rng: np.random.Generator) -> Item:
    """One photograph of the eye ``a``: retina, disc, vessels, then optics blur and noise."""
    img = _fundus_background(a, size)
    _add_disc(a, img)
    # vessels under half a pixel wide are not labelled (as when a fine map is downsampled);
    # below 64 px even trunks get that thin, so the cut shrinks to keep the main tree
    vessels, dark = rasterise_vessels(a["vessels"], size, 0.5 * min(1.0, size / 64.0))
    img *= 1.0 - dark[None] * np.array([0.45, 0.85, 0.8])[:, None, None]
    img = ndimage.gaussian_filter(img, (0, 0.5, 0.5))
    img += rng.normal(0.0, a["noise"], img.shape)
    u, v = pixel_grid(size)
    r = np.hypot(u, v)
    fov = r < _FOV_RADIUS
    rim = np.clip((_FOV_RADIUS - r) * size / 2.0 + 0.5, 0.0, 1.0)
    img = img * rim + np.abs(rng.normal(0.0, 0.008, img.shape)) * (1.0 - rim)
    image = np.clip(img, 0.0, 1.0).astype(np.float32)
    label = (vessels & fov).astype(np.int64)
    side = "right" if a["side"] > 0 else "left"
    return Item(image, label, None, meta={"fov": fov, "disc_side": side})


@PHANTOMS.register("fundus")
def fundus_phantoms(
    n_patients: int = 20, images_per_patient: int = 1, size: int = 64, seed: int = 0
) -> list[Item]:
    """Colour fundus photographs with vessel labels.

    Images of one patient share the eye and vessel tree and differ in acquisition noise.

    Returns:
        Items with image (3, size, size) float32 RGB in [0, 1], label (size, size) int64 in
        {0: background, 1: vessel}, class_id None, meta["fov"] (size, size) bool.
    """
    return _generate(
        "fundus", _fundus_anatomy, _render_fundus, n_patients, images_per_patient, size, seed
    )


# ----------------------------------------------------------------------------- brain


def _brain_anatomy(rng: np.random.Generator, patient: int) -> dict:
    """Per-patient head: outline, cortical folding, ventricles, contrasts, one tumour.

    Lesion types cycle with the patient index, so classes stay balanced in any dataset.
    """
    radius = rng.uniform(0.07, 0.18)
    t_rho, t_ang = rng.uniform(0.0, 0.62 - radius) ** 0.7, rng.uniform(0.0, 2.0 * np.pi)
    return {
        "centre": (rng.uniform(-0.04, 0.04), rng.uniform(-0.03, 0.03)),
        "rot": rng.uniform(-0.12, 0.12),
        "axes": (rng.uniform(0.56, 0.63), rng.uniform(0.67, 0.73)),
        "outline": periodic_series(rng, 5, 0.03, k0=2, decay=1.8),
        "egg": rng.uniform(0.02, 0.06),
        "wiggle": SmoothField.draw(rng, 16, (1.0, 3.0)),
        "n_gyri": int(rng.integers(26, 36)),
        "gyri_warp": periodic_series(rng, 6, 1.2, k0=1),
        "sulcus_depth": rng.uniform(0.11, 0.17),
        "sulcus_var": rng.uniform(0.35, 1.5, 64),  # depth of each sulcus
        "sulcus_tilt": rng.uniform(-0.9, 0.9, 64),  # obliquity of each sulcus
        "gm_thickness": rng.uniform(0.05, 0.065),
        "ventricles": rng.uniform(0.75, 1.35),
        "vent_field": SmoothField.draw(rng, 12, (1.5, 3.5)),
        "tissue": {  # FLAIR: CSF dark, GM brighter than WM, lesion bright
            "csf": rng.uniform(0.06, 0.13),
            "gm": rng.uniform(0.54, 0.6),
            "wm": rng.uniform(0.36, 0.42),
            "skull": rng.uniform(0.02, 0.06),
            "scalp": rng.uniform(0.3, 0.5),
        },
        "scale": rng.uniform(0.78, 1.0),
        "bias": SmoothField.draw(rng, 8, (0.15, 0.6)),
        "bias_amp": rng.uniform(0.06, 0.18),
        "texture": SmoothField.draw(rng, 48, (4.0, 10.0)),
        "noise": rng.uniform(0.012, 0.03),
        "lesion": patient % len(BRAIN_CLASS_NAMES),
        "tumour_pos": (t_rho * np.cos(t_ang), t_rho * np.sin(t_ang)),
        "tumour_r": radius,
        "tumour_z": rng.uniform(-0.12, 0.12),
        "tumour_h": radius * rng.uniform(0.9, 1.4),
        "tumour_shape": periodic_series(rng, 5, 0.25, k0=2, decay=0.7),
        "tumour_field": SmoothField.draw(rng, 16, (3.0, 7.0)),
        "tumour_core": rng.uniform(0.45, 0.65),
        "tumour_value": rng.uniform(0.8, 0.9),
        "edema": rng.uniform(0.04, 0.14),
    }


def _tissue_image(a: dict, label: np.ndarray, rho: np.ndarray, deep: np.ndarray) -> np.ndarray:
    """FLAIR-like intensities per tissue, before the lesion, blur, bias field and noise."""
    t = a["tissue"]
    img = np.zeros(label.shape)
    img[(rho >= 1.10) & (rho < 1.17)] = t["scalp"]
    img[(rho >= 1.04) & (rho < 1.10)] = t["skull"]
    for cls, value in ((1, t["csf"]), (2, t["gm"]), (3, t["wm"])):
        img[label == cls] = value
    img[deep & (label == 2)] = 0.5 * (t["gm"] + t["wm"])
    return img


def _add_lesion(a: dict, img: np.ndarray, rho_t: np.ndarray, brain: np.ndarray) -> None:
    """Paints the lesion in place: solid (bright), ring (bright rim, dark necrotic core) or
    diffuse (faint, soft-edged); solid and ring lesions get a bright oedema halo (FLAIR)."""
    size = img.shape[-1]
    t, value = a["tissue"], a["tumour_value"]
    edge = np.clip(0.5 + (1.0 - rho_t) * a["tumour_r"] * size / 2.0, 0.0, 1.0)  # ~1 px ramp
    tissue = brain & (img > t["csf"] + 0.05)
    if a["lesion"] == 2:  # diffuse: infiltrating, faint, no sharp margin
        soft = 1.0 / (1.0 + np.exp(np.clip((rho_t - 1.0) / 0.12, -50.0, 50.0)))
        img += (t["wm"] + 0.2 - img) * soft * brain
        return
    halo = np.exp(-np.clip(rho_t - 1.0, 0.0, None) / 0.5) * (rho_t > 1.0)
    img += a["edema"] * halo * tissue
    inner = value
    if a["lesion"] == 1:  # ring: enhancing rim around a necrotic core
        core = np.clip((a["tumour_core"] + 0.08 - rho_t) / 0.16, 0.0, 1.0)
        inner = value + (t["csf"] + 0.1 - value) * core
    img += (inner - img) * edge * brain


def _render_brain_section(
    a: dict, z: float, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One axial section at height ``z``: labels, then FLAIR-like image with acquisition noise.

    Returns:
        image (S, S) float32 in [0, 1], label (S, S) int64, brain mask (S, S) bool.
    """
    rho, theta, xb, yb = head_coords(a, size, z)
    brain = rho < 1.0
    sulcus, white = cortex_masks(a, rho, theta, z)
    vent, deep = deep_structures(a, xb, yb, size, z)
    midline = np.abs(xb + 0.02 * np.sin(6.0 * yb))
    fissure = (midline < 0.014) & (np.abs(yb) > 0.3)  # interhemispheric fissure, front and back
    medial_cortex = (midline < 0.06) & (np.abs(yb) > 0.27)
    label = np.where(rho < 1.04, 1, 0)
    label[brain] = 2
    label[brain & white & ~deep & ~medial_cortex] = 3
    label[brain & (sulcus | fissure | vent)] = 1
    rho_t = tumour_radius(a, xb, yb, size, z)
    tumour = brain & (rho_t < 1.0)
    if not tumour.any() and np.isfinite(rho_t).any():
        # a tiny or grazing section must still show the lesion: keep its nearest pixel
        tumour.flat[np.argmin(np.where(brain, rho_t, np.inf))] = True
    img = _tissue_image(a, label, rho, deep)
    img[brain] *= 1.0 + 0.035 * a["texture"](size, z)[brain]
    _add_lesion(a, img, rho_t, brain)
    label[tumour] = 4
    img = ndimage.gaussian_filter(img, 0.6)  # partial volume
    img *= a["scale"] * (1.0 + a["bias_amp"] * a["bias"](size, z))
    n1, n2 = rng.normal(0.0, a["noise"], (2, size, size))
    img = np.sqrt((img + n1) ** 2 + n2**2)  # magnitude of complex Gaussian noise: Rician
    return np.clip(img, 0.0, 1.0).astype(np.float32), label.astype(np.int64), brain


def _slice_offset(i: int) -> float:
    """Height of section ``i`` within the tumour, in [-1, 1]: 0, 1/2, -1/2, 1/4, -1/4, 3/4, ...

    A signed van der Corput sequence fills the range ever finer without depending on how many
    sections are asked for, so adding images never moves earlier ones.
    """
    k, x, base = (i + 1) // 2, 0.0, 0.5
    while k:
        x, k, base = x + base * (k & 1), k >> 1, base / 2.0
    return x if i % 2 else -x


def _render_brain(a: dict, i: int, n: int, size: int, rng: np.random.Generator) -> Item:
    """Section ``i`` through the patient's head, always cutting through the tumour."""
    z = a["tumour_z"] + 0.55 * a["tumour_h"] * _slice_offset(i)
    image, label, brain = _render_brain_section(a, z, size, rng)
    meta = {"brain": brain, "slice_z": float(z), "lesion": BRAIN_CLASS_NAMES[a["lesion"]]}
    return Item(image[None], label, a["lesion"], meta=meta)


@PHANTOMS.register("brain")
def brain_phantoms(
    n_patients: int = 20, images_per_patient: int = 1, size: int = 64, seed: int = 0
) -> list[Item]:
    """FLAIR-like axial brain MRI slices with tissue labels and one lesion each.

    Images of one patient are neighbouring sections through the same head and tumour.

    Returns:
        Items with image (1, size, size) float32 in [0, 1], label (size, size) int64 indexing
        ``BRAIN_LABEL_NAMES``, class_id indexing ``BRAIN_CLASS_NAMES``, meta["brain"] bool mask.
    """
    return _generate(
        "brain", _brain_anatomy, _render_brain, n_patients, images_per_patient, size, seed
    )


def _render_brain3d(a: dict, i: int, n: int, size: int, rng: np.random.Generator) -> Item:
    """A whole head volume: ``size`` axial sections spanning the same extent as the width."""
    zs = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    sections = [_render_brain_section(a, float(z), size, rng) for z in zs]
    image, label, brain = (np.stack(parts) for parts in zip(*sections, strict=True))
    meta = {"brain": brain, "lesion": BRAIN_CLASS_NAMES[a["lesion"]]}
    return Item(image[None], label, a["lesion"], meta=meta)


@PHANTOMS.register("brain3d")
def brain3d_phantoms(
    n_patients: int = 20, images_per_patient: int = 1, size: int = 32, seed: int = 0
) -> list[Item]:
    """FLAIR-like brain volumes with the same anatomy model as ``brain``.

    Images of one patient are repeat scans of the same head (new noise only).

    Returns:
        Items with image (1, size, size, size) float32 in [0, 1] (D, H, W order, axial slices
        along D), label (size, size, size) int64, class_id the lesion type.
    """
    return _generate(
        "brain3d", _brain_anatomy, _render_brain3d, n_patients, images_per_patient, size, seed
    )
