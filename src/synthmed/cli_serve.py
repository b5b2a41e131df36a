"""CLI commands for the repository server: ``serve`` (+ ``serve token create|revoke``,
``serve study create|results``), ``publish``, ``download``.

Thin wrappers over :mod:`synthmed.serve`. The server side needs the ``serve`` extra and says
so in one line when it is missing; ``publish`` and ``download`` use the standard-library
client and work from a plain install. ``register(app)`` adds them to the ``synthmed`` app.
"""

from __future__ import annotations

from pathlib import Path

import typer

from synthmed.errors import InputError

DATA_DIR = typer.Option(
    Path("synthmed-server"), "--data-dir", help="Folder of the default SQLite file and files."
)
DB = typer.Option(None, "--db", help="Database URL (default: sqlite:///DATA_DIR/synthmed.db).")
TOKEN = typer.Option(None, "--token", envvar="SYNTHMED_TOKEN", help="API token ($SYNTHMED_TOKEN).")


def _server():
    """The server's start-up module, or one line saying how to install it."""
    try:
        from synthmed.serve import run
    except ImportError as exc:
        raise InputError(
            f"the server needs the serve extra: pip install 'synthmed[serve]' ({exc.name} is missing)"
        ) from None
    return run


def serve(
    ctx: typer.Context,
    data_dir: Path = DATA_DIR,
    db: str = DB,
    storage: str = typer.Option(
        None, help="fsspec URL or folder for files (default DATA_DIR/files)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: all)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(2, help="uvicorn worker processes."),
    max_near_copy_rate: float = typer.Option(0.05, help="Gate: refuse a higher near-copy rate."),
    max_membership_auc: float = typer.Option(0.75, help="Gate: refuse a higher membership AUC."),
    max_bundle_mb: int = typer.Option(2048, help="Largest upload (MiB)."),
    max_file_mb: int = typer.Option(512, help="Largest file inside an upload (MiB)."),
) -> None:
    """Run the SynthMed repository: publish, search and download synthetic data and models."""
    if ctx.invoked_subcommand is not None:
        return
    from synthmed.serve.settings import MiB, ServeSettings

    run = _server()
    settings = ServeSettings(
        data_dir=data_dir,
        db_url=db or "",
        storage_url=storage or "",
        max_bundle_bytes=max_bundle_mb * MiB,
        max_file_bytes=max_file_mb * MiB,
        max_total_bytes=max(4 * max_bundle_mb, max_file_mb) * MiB,
        max_near_copy_rate=max_near_copy_rate,
        max_membership_auc=max_membership_auc,
    )
    run.run_server(settings, host, port, workers)


def token_create(
    name: str = typer.Option(..., "--name", help="Account name (created when new)."),
    role: str = typer.Option(..., "--role", help="reader, publisher or admin."),
    data_dir: Path = DATA_DIR,
    db: str = DB,
) -> None:
    """Create an API token (printed once; only its hash is stored). Bootstraps the first admin."""
    from synthmed.serve.accounts import ROLES
    from synthmed.serve.settings import ServeSettings

    if role not in ROLES:
        raise InputError(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
    token = _server().new_token(ServeSettings(data_dir=data_dir, db_url=db or ""), name, role)
    typer.echo(f"token for {name} ({role}); it is shown only now:", err=True)
    typer.echo(token)


def token_revoke(
    name: str = typer.Option(None, "--name", help="Revoke every live token of this account."),
    token: str = typer.Option(None, "--token", help="Revoke this one token."),
    data_dir: Path = DATA_DIR,
    db: str = DB,
) -> None:
    """Revoke API tokens; a revoked token is refused (401) saying when it was revoked."""
    from synthmed.serve.accounts import revoke_tokens
    from synthmed.serve.settings import ServeSettings

    if (name is None) == (token is None):
        raise InputError("give exactly one of --name or --token")
    repo = _server().prepared(ServeSettings(data_dir=data_dir, db_url=db or ""))
    try:
        count = revoke_tokens(repo.engine, name=name, token=token)
    finally:
        repo.engine.dispose()
    typer.echo(f"revoked {count} token(s)")


def study_create(
    name: str = typer.Option(..., "--name", help="Study name (letters, digits, '.', '_', '-')."),
    synthetic: str = typer.Option(..., "--synthetic", help="Published dataset item name."),
    real: Path = typer.Option(..., "--real", help="Zip or folder of real images (CLASS/x.png)."),
    n: int = typer.Option(..., "--n", help="Images per side (real and synthetic)."),
    reader: list[str] = typer.Option(..., "--reader", help="Reader name (repeat per reader)."),
    ask_class: bool = typer.Option(False, "--ask-class", help="Also ask each image's class."),
    to: str = typer.Option(..., "--to", help="Server URL, e.g. http://localhost:8000."),
    token: str = TOKEN,
) -> None:
    """Create a reader study (visual Turing test) and print each reader's link (shown once)."""
    from synthmed.serve.study_client import create_study

    if not token:
        raise InputError("--token (or $SYNTHMED_TOKEN) of an admin is required")
    made = create_study(to, token, name, synthetic, real, n, list(reader), ask_class)
    typer.echo(
        f"study {made['name']}: {made['n_images']} images; reader links (shown once):", err=True
    )
    for entry in made["reader_tokens"]:
        typer.echo(f"{entry['reader']}\t{entry['link']}")


def study_results(
    name: str = typer.Argument(..., help="Study name."),
    to: str = typer.Option(..., "--to", help="Server URL."),
    token: str = TOKEN,
    csv: Path = typer.Option(None, "--csv", help="Also write every answer to this CSV file."),
) -> None:
    """Print a study's results as JSON (accuracy, CI, p-value, kappas)."""
    import json

    from synthmed.serve.study_client import study_answers_csv
    from synthmed.serve.study_client import study_results as fetch_results

    typer.echo(json.dumps(fetch_results(to, token, name), indent=2))
    if csv:
        csv.write_text(study_answers_csv(to, token, name), encoding="utf-8")


def publish(
    source: Path = typer.Argument(..., help="A dataset export folder or a NAME.synthmed package."),
    to: str = typer.Option(..., "--to", help="Server URL, e.g. http://localhost:8000."),
    token: str = TOKEN,
    run: Path = typer.Option(None, "--run", help="Run folder with metrics.json, report.html."),
    name: str = typer.Option(None, help="Item name (default: folder or package name)."),
    private: bool = typer.Option(False, help="Visible to accounts on the server only."),
    licence: str = typer.Option("CC-BY-4.0", help="Licence of the published data or weights."),
    modality: str = typer.Option("", help="e.g. MR, CT, fundus."),
    anatomy: str = typer.Option("", help="e.g. brain, retina."),
    task: str = typer.Option("", help="Default: the evaluated task (segmentation, ...)."),
    title: str = typer.Option("", help="One-line title."),
    description: str = typer.Option("", help="A paragraph for the item page and card."),
) -> None:
    """Publish an export or model package, with its run's audit, report and card."""
    from synthmed.serve.client import publish as publish_item

    if not token:
        raise InputError("--token (or $SYNTHMED_TOKEN) is required to publish")
    item = publish_item(
        source,
        to,
        token,
        run_dir=run,
        name=name,
        visibility="private" if private else "public",
        licence=licence,
        modality=modality,
        anatomy=anatomy,
        task=task,
        title=title,
        description=description,
    )
    ev = item["evidence"]
    typer.echo(
        f"published {item['name']} ({item['kind']}): near-copy rate {ev['near_copy_rate']:.4f}, "
        f"membership AUC {ev['membership_auc']:.4f}; {to.rstrip('/')}/items/{item['name']}"
    )


def download(
    url: str = typer.Argument(..., help="Item URL (.../items/NAME)."),
    out: Path = typer.Option(..., help="Folder to write the export (or package) to."),
    token: str = TOKEN,
    layout: str = typer.Option(
        "original", help="original (as published), nnunet (nnU-Net raw) or monai (datalist)."
    ),
) -> None:
    """Download an item as the original export (or package) folder, or re-laid for a tool."""
    from synthmed.serve.client import download as download_item

    typer.echo(f"downloaded: {download_item(url, out, token, layout)}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` (with ``serve token create``), ``publish`` and ``download`` (once)."""
    if any(cmd.name == "publish" for cmd in app.registered_commands):
        return
    group = typer.Typer(help="The SynthMed repository server.")
    group.callback(invoke_without_command=True)(serve)
    tokens = typer.Typer(no_args_is_help=True, help="API tokens.")
    tokens.command("create")(token_create)
    group.add_typer(tokens, name="token")
    tokens.command("revoke")(token_revoke)
    studies = typer.Typer(no_args_is_help=True, help="Reader studies (visual Turing test).")
    studies.command("create")(study_create)
    studies.command("results")(study_results)
    group.add_typer(studies, name="study")
    app.add_typer(group, name="serve")
    app.command("publish")(publish)
    app.command("download")(download)
