"""CLI command ``synthmed reproduce``: one seed paper's experiment, end to end
(:mod:`synthmed.reproduce`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def reproduce(
    name: str = typer.Argument(None, help="Experiment name (see --list) or an experiment YAML."),
    list_: bool = typer.Option(False, "--list", help="List the built-in experiments and stop."),
    out: Path = typer.Option(None, help="Output folder (default runs/reproduce/NAME)."),
    data_root: Path = typer.Option(
        Path("../shared/data"), help="Folder holding drive/, lgg_flair/, busi_256/, breastmnist/."
    ),
    scale: str = typer.Option(
        "reduced", help="reduced (CPU-sized) or paper (the presets' full settings)."
    ),
    quick: bool = typer.Option(False, help="Minutes-long smoke version on built-in phantoms."),
    seeds: int = typer.Option(None, help="Seeds per cell (default: the experiment's, >= 3)."),
    arm: list[str] = typer.Option([], "--arm", help="Run only this arm (repeat)."),
    fold: list[int] = typer.Option([], "--fold", help="Run only this CV fold (repeat)."),
    reuse: bool = typer.Option(False, help="Keep trained arms and evaluations found in --out."),
    results: Path = typer.Option(
        None, help="Also copy results.json/results.md here (e.g. benchmarks/reproduction/NAME)."
    ),
    merge: bool = typer.Option(
        False,
        help="Add the --arm(s) run now to the results already in --results (their other arms "
        "and real-only baselines are kept, not re-run) instead of replacing them.",
    ),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Reproduce a seed paper's claim: train its arms, evaluate, write results.json/.md."""
    from synthmed.errors import InputError
    from synthmed.reproduce import list_experiments, read_experiment, run_experiment

    if list_:
        for experiment in list_experiments():
            typer.echo(f"{experiment}: {read_experiment(experiment).title}")
        return
    if name is None:
        raise InputError("give an experiment NAME (see `synthmed reproduce --list`)")
    folder = out or Path("runs") / "reproduce" / (Path(name).stem + ("-quick" if quick else ""))
    command = shlex.join(["synthmed", *sys.argv[1:]])
    base = _merge_base(results) if merge else None
    result = run_experiment(
        name,
        folder,
        data_root=data_root,
        scale=scale,
        quick=quick,
        seeds=seeds,
        arms=arm or None,
        folds=fold or None,
        device=device,
        quiet=quiet,
        reuse=reuse,
        command=command,
        merge_with=base,
        merge_source=str(results / "results.json") if merge else "",
    )
    if results is not None:
        from synthmed.atomic import write_text

        for file in ("results.json", "results.md"):
            write_text(results / file, (folder / file).read_text(encoding="utf-8"))
    for claim in result["claims"]:
        typer.echo(
            f"{claim['id']}: {claim['verdict']} (difference {claim['mean_diff']:.3f}, {claim['n_pairs']} pairs)"
        )
    typer.echo(f"results: {folder / 'results.json'} ({result['wall_time_s']:.0f} s)")


def _merge_base(results: Path | None) -> dict:
    """The committed results that ``--merge`` adds to, or a clear refusal."""
    import json

    from synthmed.errors import InputError

    if results is None:
        raise InputError("--merge adds to the results in --results DIR; give --results")
    path = results / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("--merge: no results.json to add to", path) from None
    except json.JSONDecodeError as error:
        raise InputError(f"--merge: not valid JSON ({error})", path) from None


def register(app: typer.Typer) -> None:
    if not any(c.name == "reproduce" for c in app.registered_commands):
        app.command(name="reproduce")(reproduce)
