"""One call from a model package to labelled synthetic data: ``synthmed.generate``.

(The module is named ``hub`` so that ``synthmed.generate`` stays the function.)

Example:
    >>> import synthmed
    >>> images, labels = synthmed.generate("fundus-demo", n=16, seed=0)  # doctest: +SKIP
    >>> images.shape, labels.shape  # doctest: +SKIP
    ((16, 1, 32, 32), (16, 32, 32))

Sample ``i`` uses seed ``seed + i`` (its own latent generator), so a package gives the same
images as the run it was packaged from for the same seeds and batch size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from synthmed.errors import InputError


def _load(name_or_path, registry, device: str, expected_digest: str | None):
    from synthmed.packaging import load_package, resolve_package

    return load_package(resolve_package(name_or_path, registry), device, expected_digest)


def generate(
    name_or_path: str | Path,
    n: int = 16,
    seed: int = 0,
    registry: str | Path | None = None,
    *,
    threshold: float | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    expected_digest: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and label maps from a verified model package.

    Args:
        name_or_path: a package folder, or the name of one installed in the registry.
        n: number of samples; seeds ``seed .. seed+n-1``.
        registry: registry folder (default ``$SYNTHMED_MODELS`` or the user cache).
        threshold: label threshold on the tanh range (default: the package's).
        batch_size: generation batch (default: the package's sample batch size).
        expected_digest: refuse the package unless :func:`package_digest` equals this.

    Returns:
        images (n, C, *spatial) float32 in [0, 1]; labels (n, *spatial) int64.
    """
    from synthmed.outputs import check_sample_args
    from synthmed.sampling.export import generate_pairs

    check_sample_args(n, threshold, batch_size)
    pkg = _load(name_or_path, registry, device, expected_digest)
    defaults = pkg.meta["sample_defaults"]
    return generate_pairs(
        pkg.generator,
        list(range(seed, seed + n)),
        defaults["label_threshold"] if threshold is None else threshold,
        batch_size or defaults["batch_size"],
    )


def generate_dataset(
    name_or_path: str | Path,
    out: str | Path,
    n: int = 16,
    seed: int = 0,
    fmt: str = "png",
    registry: str | Path | None = None,
    *,
    bits: int = 8,
    device: str = "cpu",
    quiet: bool = False,
    expected_digest: str | None = None,
) -> Path:
    """Write a synthetic dataset from a package: ``png`` exactly as ``synthmed sample`` does,
    any other export format through :func:`synthmed.export.export_dataset`."""
    from synthmed.export import export_dataset, export_target
    from synthmed.outputs import check_output_dir, check_sample_args
    from synthmed.packaging import package_export_info
    from synthmed.sampling.export import export_from_generator

    check_sample_args(n)  # before the package is verified and loaded: a bad request is cheap
    target = out if fmt == "png" and bits == 8 else export_target(fmt, out)
    if bits not in (8, 16):
        raise InputError(f"--bits must be 8 or 16, got {bits}")
    package = Path(name_or_path) if Path(name_or_path).is_dir() else None
    check_output_dir(target, protected={"the model package": package})
    pkg = _load(name_or_path, registry, device, expected_digest)
    defaults, out = pkg.meta["sample_defaults"], Path(out)
    label = f"{pkg.path.name}/weights.safetensors"
    args = dict(n=n, seed=seed, threshold=defaults["label_threshold"], quiet=quiet)
    info = package_export_info(pkg.meta)
    args.update(batch_size=defaults["batch_size"], checkpoint_label=label, info=info)
    if fmt == "png" and bits == 8:
        return export_from_generator(pkg.generator, out, formats=["png"], **args)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".synthmed-", dir=out.parent) as tmp:
        source = export_from_generator(pkg.generator, Path(tmp) / "s", formats=["nifti"], **args)
        return export_dataset(source, fmt, out, bits=bits, info=info, quiet=quiet)
