"""Command line: one subcommand per API function; parses, calls ``synthmed.api``, prints.

Heavy modules (torch, monai) are imported inside the commands so ``--help`` is instant.
User errors (``InputError``) end with one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import logging
import os
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
ALLOW_PRIVACY_RISK = typer.Option(
    None,
    "--allow-privacy-risk",
    metavar="REASON",
    help="Write the dataset although the export gate refuses it; REASON is recorded with it.",
)


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
    ctx: typer.Context,
    config: Path = typer.Argument(None, help="Run YAML (may name a preset); omit with --preset."),
    preset: str = typer.Option(None, help="Built-in preset (see `synthmed presets`)."),
    quick: bool = typer.Option(False, help="Use the preset's CPU-sized 'quick' scale."),
    data: Path = typer.Option(None, "--data", help="Data description YAML (replaces data:)."),
    set_: list[str] = typer.Option([], "--set", help="Override, e.g. --set train.steps=500."),
    out: Path = typer.Option(None, help="Run folder (default runs/<name>)."),
    resume: bool = typer.Option(False, help="Continue from the run's last checkpoint."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and stop."),
    device: str = typer.Option(None, help="Overrides train.device."),
    budget: str = typer.Option(
        None, help="Train for this wall time (90s, 20m, 1.5h) instead of train.steps."
    ),
    nproc: int = typer.Option(
        None, help="Train in N processes on this machine (relaunches under torchrun)."
    ),
    quiet: bool = QUIET,
) -> None:
    """Train a generator on your data (or phantoms) into a run folder."""
    from synthmed.config.loading import dump_yaml, load_run_config

    if config is None and preset is None:
        raise InputError("give a CONFIG.yaml or --preset NAME")
    if nproc is not None and not dry_run:
        sys.exit(_launch_torchrun(ctx, nproc))
    overrides = list(set_) + ([f"train.device={device}"] if device else [])
    overrides += [f"train.budget={budget}"] if budget else []
    cfg, base_dir = load_run_config(
        config, preset=preset, quick=quick, overrides=overrides, data_file=data
    )
    if dry_run:
        typer.echo(dump_yaml(cfg))
        return
    from synthmed import api

    run_dir = out or Path("runs") / cfg.name
    result = api.train(cfg, run_dir, base_dir=base_dir, resume=resume, quiet=quiet)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone reports
        return
    typer.echo(
        f"trained {result.steps} steps in {result.seconds:.0f}s "
        f"({result.steps_per_second:.2f} steps/s); checkpoint: {result.checkpoint}"
    )


@app.command()
def sample(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="A trained run folder."),
    n: int = typer.Option(None, "--n", help="Number of samples (default: config sample.n)."),
    seed: int = typer.Option(None, help="First seed; sample i uses seed+i."),
    format_: list[str] = typer.Option(
        [], "--format", help="png, nifti, nnunet, monai, npz, dicom (repeatable)."
    ),
    out: Path = typer.Option(None, help="Dataset folder (default RUN_DIR/synthetic)."),
    threshold: float = typer.Option(None, help="Label-channel threshold on the tanh range."),
    label_source: str = typer.Option(
        None, help="Translators: label maps from auto | cascade (mask stage) | train."
    ),
    lesion_size: list[int] = typer.Option(
        [], "--lesion-size", help="label source 'cases': target lesion area in pixels (repeatable)."
    ),
    lesion_centre: list[str] = typer.Option(
        [], "--lesion-centre", help="label source 'cases': lesion centre 'y,x' (repeatable)."
    ),
    edit_lesions: bool = typer.Option(
        None, "--edit-lesions/--no-edit-lesions", help="Translators: random lesion edit per sample."
    ),
    exclude_near_copies: bool = typer.Option(
        False, help="Drop samples that are near-copies of a training image (recorded in manifest)."
    ),
    quantile: float = typer.Option(
        None, help="Near-copy threshold: this quantile of held-out distances (default 0.01)."
    ),
    steps: int = typer.Option(None, help="Diffusion models: sampler steps (default: the model's)."),
    guidance_scale: float = typer.Option(
        None, help="Class-conditional diffusion: classifier-free guidance scale (1 = none)."
    ),
    allow_privacy_risk: str = ALLOW_PRIVACY_RISK,
    device: str = DEVICE,
    nproc: int = typer.Option(
        None, help="Sample in N processes on this machine (relaunches under torchrun)."
    ),
    quiet: bool = QUIET,
) -> None:
    """Export a labelled synthetic dataset with a provenance manifest.

    The export gate (sample.gate) drops near-copies of training images and refuses a dataset
    whose near-copy rate or membership AUC is above its limits; nothing is written then.
    """
    from synthmed import api
    from synthmed.evaluation.gate import describe, read_gate

    if nproc is not None:
        sys.exit(_launch_torchrun(ctx, nproc))
    folder = api.sample(
        run_dir,
        n=n,
        seed=seed,
        formats=format_ or None,
        out=out,
        threshold=threshold,
        device=device,
        quiet=quiet,
        label_source=label_source,
        edit_lesions=edit_lesions,
        lesion_sizes=lesion_size or None,
        lesion_centres=[_parse_centre(c) for c in lesion_centre] or None,
        exclude_near_copies=exclude_near_copies,
        quantile=quantile,
        steps=steps,
        guidance_scale=guidance_scale,
        allow_privacy_risk=allow_privacy_risk,
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone reports
        return
    typer.echo(f"synthetic dataset: {folder} (manifest: {folder / 'manifest.csv'})")
    record = read_gate(folder)
    if record is not None:
        typer.echo(describe(record))
    if exclude_near_copies:
        import json

        info = json.loads((folder / "filtering.json").read_text())
        typer.echo(
            f"near-copy filter: dropped {info['n_dropped']} of {info['n_before']} "
            f"(threshold {info['threshold']:.4g} = 1 - NCC, quantile {info['quantile']:g})"
        )


def _without_nproc(args: list[str]) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def torchrun_command(args: list[str], nproc: int) -> list[str]:
    """The torchrun command that runs ``synthmed ARGS`` in ``nproc`` local processes.

    torchrun's own parser reads every word of its command line, the script's arguments
    included, and takes an abbreviation of one of its options for that option: ``--n 4``
    stops it with "ambiguous option: --n could match --nnodes, --nproc-per-node, ...".
    A ``--`` before synthmed's arguments ends torchrun's options (argparse passes the rest
    through untouched); :func:`main` ignores a leading ``--`` in case a Python version keeps
    it.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return cmd + ["--nproc-per-node", str(nproc), "-m", "synthmed", "--", *_without_nproc(args)]


def _launch_torchrun(ctx: typer.Context, nproc: int) -> int:
    """``synthmed CMD ... --nproc N`` as :func:`torchrun_command`; returns the job's exit
    code, with one line saying so when a rank failed."""
    import subprocess

    if nproc < 1:
        raise InputError(f"--nproc must be at least 1, got {nproc}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("--nproc inside a torchrun job: give it to torchrun, not to synthmed")
    args = (ctx.find_root().obj or {}).get("argv", sys.argv[1:])
    code = subprocess.run(torchrun_command(args, nproc)).returncode
    if code:
        typer.echo(
            f"error: synthmed {ctx.info_name} --nproc {nproc}: a rank failed and torchrun "
            f"stopped the job (exit code {code}); the rank's error line is above and "
            "torchrun's report names the first failing rank. Finished work is kept: the same "
            "command resumes it (sample: only the missing shards; train: add --resume)",
            err=True,
        )
    return code


def _parse_centre(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--lesion-centre '{text}' must look like y,x (or z,y,x)") from None


@app.command()
def evaluate(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="A trained run folder."),
    protocols: str = typer.Option(
        None,
        help="Comma list or 'all' (real, real+classic-aug, real+synthetic:1|2|5, synthetic-only, "
        "pretrain-synthetic+finetune-real). Default: config (real,synthetic-only).",
    ),
    sizes: str = typer.Option(
        None, help="Numbers of real training patients, e.g. 1,2,5,all. Default: config (all)."
    ),
    seeds: int = typer.Option(None, help="Seeds per cell: N runs seeds 0..N-1 (>= 3 to report)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override an evaluate.* key, e.g. --set evaluate.utility.steps=100."
    ),
    device: str = DEVICE,
    nproc: int = typer.Option(
        None, help="Evaluate in N processes on this machine (relaunches under torchrun)."
    ),
    quiet: bool = QUIET,
) -> None:
    """Utility (protocol x real patients x seed, tested on real), fidelity, privacy -> metrics.json."""
    from synthmed import api

    if nproc is not None:
        sys.exit(_launch_torchrun(ctx, nproc))

    def split(text: str | None) -> list[str] | None:
        return [p.strip() for p in text.split(",") if p.strip()] if text else None

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    metrics = api.evaluate(
        run_dir,
        device=device,
        quiet=quiet,
        protocols=split(protocols),
        sizes=split(sizes),
        seeds=seeds,
        overrides=list(set_),
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone reports
        return
    for task, section in metrics["utility"].items():
        metric = section["metric"]
        for entry in section["summary"][metric]:
            typer.echo(
                f"{task} {entry['protocol']:<34} n={entry['size']!s:<4} {metric} "
                f"{fmt(entry['mean'])} [{fmt(entry['ci_low'])}, {fmt(entry['ci_high'])}] "
                f"({entry['n']} seeds)"
            )
    privacy = metrics.get("privacy") or {}
    if privacy:
        px = privacy["pixel"]
        typer.echo(f"near-copies: {px['n_flagged']} of {privacy['n']['synthetic']} synthetic")
    typer.echo(f"metrics: {Path(run_dir) / 'metrics.json'}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="An evaluated run folder.")) -> None:
    """Write the self-contained HTML report (report.html) of an evaluated run."""
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

from synthmed.cli_reproduce import register as _register_reproduce  # noqa: E402

_register_reproduce(app)  # reproduce

from synthmed.cli_serve import register as _register_serve  # noqa: E402

_register_serve(app)  # serve, publish, download


def _click_exception_type() -> type[Exception]:
    """The base class of typer's usage errors, without depending on click.

    typer >= 0.2x ships its own copy of click (``typer._click``) and no longer installs click;
    older typer releases depend on click itself.
    """
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # typer that still depends on click
        from click.exceptions import ClickException
    return ClickException


def _rank_prefix() -> str:
    """``rank 1: `` inside a torchrun job of several processes (which one said it), else ``""``."""
    world, rank = os.environ.get("WORLD_SIZE", "1"), os.environ.get("RANK", "0")
    return f"rank {rank}: " if world not in ("", "1") else ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_error_line(exc: Exception) -> str:
    """``error: synthmed train: No such option: --foo (see synthmed train --help)``."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "synthmed"
    return f"error: {command}: {_one_line(exc.format_message())} (see {command} --help)"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``argv`` defaults to ``sys.argv[1:]``.

    Every user error ends in one line on stderr and exit code 2: bad input
    (``InputError``), a usage error (unknown option or command, missing argument, a value
    of the wrong type) and a file the system refuses (permission, read-only, disk full).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    usage_error = _click_exception_type()
    argv = sys.argv[1:] if argv is None else list(argv)
    argv = argv[1:] if argv[:1] == ["--"] else argv  # torchrun ... -m synthmed -- CMD ...
    try:
        code = app(args=argv, prog_name="synthmed", standalone_mode=False, obj={"argv": argv})
    except InputError as exc:
        typer.echo(f"error: {_rank_prefix()}{_one_line(exc)}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except usage_error as exc:
        typer.echo(_usage_error_line(exc), err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.filename is None:  # not about a file of the user's: a bug, keep the traceback
            raise
        typer.echo(f"error: {exc.filename}: {exc.strerror or _one_line(exc)}", err=True)
        sys.exit(2)
    if isinstance(code, int) and code:  # typer.Exit(code) in non-standalone mode
        sys.exit(code)


if __name__ == "__main__":
    main()
