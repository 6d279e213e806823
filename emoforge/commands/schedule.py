"""`emoforge schedule` and `emoforge serve`: annotation jobs as Prefect deployments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from emoforge.flows.schedule import DeploymentSpec


def _spec(
    name: str,
    inputs: list[str],
    out: str,
    config: Path | None,
    cron: str | None,
    interval: float | None,
    retry: str,
) -> DeploymentSpec:
    from emoforge.flows.schedule import DeploymentSpec

    if retry not in ("transient", "all", "none"):
        raise typer.BadParameter("--retry must be transient, all or none")
    try:
        return DeploymentSpec(
            name=name,
            inputs=inputs,
            out=out,
            config_path=str(config) if config else None,
            cron=cron,
            interval_s=interval,
            retry=retry,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


Name = Annotated[str, typer.Argument(help="Deployment name (runs show as annotate_corpus/<name>).")]
Inputs = Annotated[list[str], typer.Argument(help="Media files, folders (growing folders welcome), manifests.")]
Out = Annotated[str, typer.Option("--out", "-o", help="Corpus directory or fsspec URL.")]
Config = Annotated[Path | None, typer.Option("--config", "-c", help="YAML merged over the defaults.")]
Cron = Annotated[str | None, typer.Option(help="Cron schedule, e.g. '*/30 * * * *'.")]
Interval = Annotated[float | None, typer.Option(help="Interval schedule in seconds.")]
Retry = Annotated[str, typer.Option(help="Redo committed failures: transient, all, none.")]


def schedule(
    name: Name,
    inputs: Inputs,
    out: Out,
    config: Config = None,
    cron: Cron = None,
    interval: Interval = None,
    retry: Retry = "transient",
    pool: Annotated[str, typer.Option(help="Process work pool (created if missing).")] = "emoforge",
) -> None:
    """Register a scheduled deployment on a work pool; `prefect worker start --pool POOL` runs it."""
    from emoforge.flows.schedule import register

    spec = _spec(name, inputs, out, config, cron, interval, retry)
    deployment_id = register(spec, work_pool=pool)
    typer.echo(f"deployment annotate_corpus/{name} ({deployment_id}) on pool {pool!r}")
    typer.echo(f"run it with: prefect worker start --pool {pool}")


def serve(
    name: Name,
    inputs: Inputs,
    out: Out,
    config: Config = None,
    cron: Cron = None,
    interval: Interval = None,
    retry: Retry = "transient",
    limit: Annotated[int | None, typer.Option(help="Most flow runs at once in this process.")] = None,
) -> None:
    """Create the deployment and execute its scheduled and triggered runs in this process."""
    from emoforge.flows.schedule import serve as serve_specs

    spec = _spec(name, inputs, out, config, cron, interval, retry)
    typer.echo(f"serving annotate_corpus/{name}; Ctrl-C stops (and pauses its schedule)", err=True)
    serve_specs([spec], limit=limit)


def register(app: typer.Typer) -> None:
    app.command("schedule")(schedule)
    app.command("serve")(serve)
