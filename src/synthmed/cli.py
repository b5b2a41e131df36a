"""Command line: one subcommand per API function; parses, calls ``synthmed.api``, prints.

Heavy modules (torch, monai) are imported inside the commands so ``--help`` is instant.
User errors (``InputError``) end with one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from synthmed.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="synthmed: labelled synthetic medical images, with fidelity, utility and privacy evaluation.",
)

QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.")
DEVICE = typer.Option("auto", help="cpu, cuda, cuda:1 or auto (CUDA when present).")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run folder to write."),
    tiny: bool = typer.Option(False, help="Seconds-long smoke version of every stage."),
    device: str = DEVICE,
    quiet: bool = QUIET,
) -> None:
    """Train a WGAN-GP-SN on built-in fundus phantoms, sample, evaluate and write a report."""
    from synthmed import api

    result = api.demo(out, tiny=tiny, device=device, quiet=quiet)
    arms = result["utility"].get("segmentation", {}).get("arms", {})
    for arm, vals in arms.items():
        typer.echo(
            f"U-Net trained on {arm:<9}: Dice {vals['dice_mean']:.3f} on the real test split"
        )
    typer.echo(f"wall time {result['timings']['total_s']:.0f}s; metrics: {result['metrics']}")
    typer.echo(f"report: {result['report']}")


@app.command()
def train(
    config: Path = typer.Argument(None, help="Run YAML (may name a preset); omit with --preset."),
    preset: str = typer.Option(None, help="Built-in preset (see `synthmed presets`)."),
    quick: bool = typer.Option(False, help="Use the preset's CPU-sized 'quick' scale."),
    set_: list[str] = typer.Option([], "--set", help="Override, e.g. --set train.steps=500."),
    out: Path = typer.Option(None, help="Run folder (default runs/<name>)."),
    resume: bool = typer.Option(False, help="Continue from the run's last checkpoint."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
    device: str = typer.Option(None, help="Overrides train.device."),
    quiet: bool = QUIET,
) -> None:
    """Train a generator on your data (or phantoms) into a run folder."""
    from synthmed.config.loading import dump_yaml, load_run_config

    if config is None and preset is None:
        raise InputError("give a CONFIG.yaml or --preset NAME")
    overrides = list(set_) + ([f"train.device={device}"] if device else [])
    cfg, base_dir = load_run_config(config, preset=preset, quick=quick, overrides=overrides)
    if dry_run:
        typer.echo(dump_yaml(cfg))
        return
    from synthmed import api

    run_dir = out or Path("runs") / cfg.name
    result = api.train(cfg, run_dir, base_dir=base_dir, resume=resume, quiet=quiet)
    typer.echo(
        f"trained {result.steps} steps in {result.seconds:.0f}s; checkpoint: {result.checkpoint}"
    )


@app.command()
def sample(
    run_dir: Path = typer.Argument(..., help="A trained run folder."),
    n: int = typer.Option(None, "--n", help="Number of samples (default: config sample.n)."),
    seed: int = typer.Option(None, help="First seed; sample i uses seed+i."),
    format_: list[str] = typer.Option(
        [], "--format", help="png, nifti, nnunet, monai, npz, dicom (repeatable)."
    ),
    out: Path = typer.Option(None, help="Dataset folder (default RUN_DIR/synthetic)."),
    threshold: float = typer.Option(None, help="Label-channel threshold on the tanh range."),
    device: str = DEVICE,
    quiet: bool = QUIET,
) -> None:
    """Export a labelled synthetic dataset with a provenance manifest."""
    from synthmed import api

    folder = api.sample(
        run_dir,
        n=n,
        seed=seed,
        formats=format_ or None,
        out=out,
        threshold=threshold,
        device=device,
        quiet=quiet,
    )
    typer.echo(f"synthetic dataset: {folder} (manifest: {folder / 'manifest.csv'})")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A trained run folder."),
    device: str = DEVICE,
    quiet: bool = QUIET,
) -> None:
    """U-Net on real vs on synthetic data, tested on the real test split -> metrics.json."""
    from synthmed import api

    metrics = api.evaluate(run_dir, device=device, quiet=quiet)
    for arm, vals in metrics["utility"]["segmentation"]["arms"].items():
        typer.echo(f"{arm:<9} Dice {vals['dice_mean']:.3f}  HD95 {vals['hd95_mean']:.2f}")
    typer.echo(f"metrics: {Path(run_dir) / 'metrics.json'}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="An evaluated run folder.")) -> None:
    """Write the self-contained HTML report of a run."""
    from synthmed import api

    typer.echo(f"report: {api.report(run_dir)}")


@app.command()
def presets() -> None:
    """List the built-in presets."""
    from synthmed.config.loading import list_presets

    for name in list_presets():
        typer.echo(name)


from synthmed.cli_share import register as _register_sharing  # noqa: E402

_register_sharing(app)  # export, package, models list|show|generate


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
