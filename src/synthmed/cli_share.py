"""CLI commands for sharing: ``export``, ``package`` and ``models list|show|generate|install``.

Thin wrappers over :mod:`synthmed.export`, :mod:`synthmed.packaging` and
:mod:`synthmed.hub`; heavy modules are imported inside the commands so ``--help`` stays
instant. ``register(app)`` adds them to the main ``synthmed`` app (idempotent).
"""

from __future__ import annotations

from pathlib import Path

import typer

QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.")
REGISTRY = typer.Option(
    None, help="Model registry folder (default $SYNTHMED_MODELS or ~/.cache/synthmed/models)."
)
FORMATS_HELP = "nnunet, monai, nifti, png, npz or dicom."


def export(
    run_dir: Path = typer.Argument(..., help="A trained run folder."),
    format_: str = typer.Option(..., "--format", help=FORMATS_HELP),
    out: Path = typer.Option(None, help="Export folder (default RUN_DIR/export/FORMAT)."),
    synthetic: Path = typer.Option(None, help="Synthetic dataset (default RUN_DIR/synthetic)."),
    name: str = typer.Option(None, help="Dataset name (nnunet: DatasetNNN_Name)."),
    bits: int = typer.Option(8, help="8 or 16 bit for png, npz and dicom."),
    spacing: list[float] = typer.Option([], help="mm per axis (repeat; default: real data)."),
    allow_privacy_risk: str = typer.Option(
        None,
        "--allow-privacy-risk",
        metavar="REASON",
        help="Write it although the export gate refuses it (sampling first, or a dataset "
        "sampled for evaluation only); REASON is recorded in export.json.",
    ),
    quiet: bool = QUIET,
) -> None:
    """Convert a run's synthetic dataset for nnU-Net, MONAI, NIfTI, PNG, NPZ or DICOM.

    A run without a synthetic dataset is sampled first, through the export gate.
    """
    from synthmed import api
    from synthmed.export import check_export_request, export_dataset

    if synthetic is None:
        synthetic = run_dir / "synthetic"
        if not (synthetic / "manifest.csv").is_file():  # like `evaluate`: sample first
            out_dir = out or run_dir / "export" / format_
            check_export_request(  # a bad --out must not cost a sampled dataset
                format_, out_dir, synthetic_dir=synthetic, run_dir=run_dir, name=name, bits=bits
            )
            api.sample(run_dir, quiet=quiet, allow_privacy_risk=allow_privacy_risk)
    folder = export_dataset(
        synthetic,
        format_,
        out or run_dir / "export" / format_,
        run_dir=run_dir,
        name=name,
        bits=bits,
        spacing=spacing or None,
        quiet=quiet,
        allow_privacy_risk=allow_privacy_risk,
    )
    typer.echo(f"{format_} export: {folder} (manifest: {folder / 'manifest.csv'})")


def package(
    run_dir: Path = typer.Argument(..., help="A trained (ideally evaluated) run folder."),
    out: Path = typer.Option(None, help="Package folder (default RUN_DIR/NAME.synthmed)."),
    name: str = typer.Option(None, help="Package name (default: the run's name)."),
    install: bool = typer.Option(False, help="Also install it into the model registry."),
    include_critic: bool = typer.Option(False, help="Ship the critic weights too."),
    registry: Path = REGISTRY,
) -> None:
    """Package a trained generator: safetensors weights, config, model card, checksums."""
    from synthmed.packaging import build_package, install_package, package_digest

    path = build_package(run_dir, out, name=name, include_critic=include_critic)
    typer.echo(f"package: {path} (sha256 of checksums: {package_digest(path)})")
    if install:
        typer.echo(f"installed: {install_package(path, registry)}")


def models_list(registry: Path = REGISTRY) -> None:
    """List the packages installed in the model registry."""
    from synthmed.packaging import list_models, registry_dir

    rows = list_models(registry)
    if not rows:
        typer.echo(f"no models installed in {registry_dir(registry)}")
    for row in rows:
        if "error" in row:
            typer.echo(f"{row['name']:<24} {row['error']}")
            continue
        typer.echo(
            f"{row['name']:<24} {row['model']:<12} synthmed {row['version']:<8} {row['created']}"
        )


def models_show(
    name: str = typer.Argument(..., help="Installed name or package folder."),
    registry: Path = REGISTRY,
) -> None:
    """Print a package's model card (after verifying its checksums)."""
    from synthmed.packaging import read_card

    typer.echo(read_card(name, registry))


def models_generate(
    name: str = typer.Argument(..., help="Installed name or package folder."),
    n: int = typer.Option(16, "--n", help="Number of samples."),
    seed: int = typer.Option(0, help="First seed; sample i uses seed+i."),
    out: Path = typer.Option(..., help="Output folder."),
    format_: str = typer.Option("png", "--format", help=f"png (as `sample`), {FORMATS_HELP}"),
    bits: int = typer.Option(8, help="8 or 16 bit for png, npz and dicom."),
    sha256: str = typer.Option(None, help="Refuse unless the package digest equals this."),
    registry: Path = REGISTRY,
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    quiet: bool = QUIET,
) -> None:
    """Generate a labelled synthetic dataset from a verified model package."""
    from synthmed.hub import generate_dataset

    folder = generate_dataset(
        name,
        out,
        n=n,
        seed=seed,
        fmt=format_,
        registry=registry,
        bits=bits,
        device=device,
        quiet=quiet,
        expected_digest=sha256,
    )
    typer.echo(f"synthetic dataset: {folder} (manifest: {folder / 'manifest.csv'})")


def models_install(
    url: str = typer.Argument(..., help="Item URL on a SynthMed server (.../items/NAME)."),
    registry: Path = REGISTRY,
    token: str = typer.Option(None, envvar="SYNTHMED_TOKEN", help="For private items."),
) -> None:
    """Download a model package from a SynthMed server, verify it and install it."""
    from synthmed.serve.client import install_model

    typer.echo(f"installed: {install_model(url, registry, token)}")


def register(app: typer.Typer) -> None:
    """Add ``export``, ``package`` and the ``models`` group to ``app`` (once)."""
    if any(cmd.name == "export" for cmd in app.registered_commands):
        return
    app.command("export")(export)
    app.command("package")(package)
    models = typer.Typer(no_args_is_help=True, help="Installed model packages.")
    models.command("list")(models_list)
    models.command("show")(models_show)
    models.command("generate")(models_generate)
    models.command("install")(models_install)
    app.add_typer(models, name="models")
