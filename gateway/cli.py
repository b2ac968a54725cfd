"""The `gateway` command: serve, db upgrade, import, demo."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

import click

from gateway.settings import Settings, SettingsError, load_settings


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


@click.group()
def main() -> None:
    """Crisis-response FHIR gateway."""


@main.command()
@click.option("--host", help="Address to bind (default from settings: 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default from settings: 8080).")
@click.option("--workers", type=int, help="gunicorn worker processes (default from settings: 1).")
@click.option("--demo/--no-demo", default=False, help="Load the demo records before serving.")
def serve(host: str | None, port: int | None, workers: int | None, demo: bool) -> None:
    """Run the gateway under gunicorn (the production server)."""
    settings = _settings(host=host, port=port, workers=workers)
    if not is_loopback(settings.host):
        raise click.ClickException(
            f"refusing to bind {settings.host}: until SMART authorization is in place the gateway serves "
            "loopback addresses only (127.0.0.1, ::1)"
        )
    from gateway.store.database import is_current, open_database  # noqa: PLC0415

    database = open_database(settings.database_url)
    if not is_current(database):
        raise click.ClickException("the PostgreSQL schema is not current: run `gateway db upgrade` first")
    if demo:
        from gateway.demo import load_demo  # noqa: PLC0415

        summary = load_demo(settings)
        click.echo(f"demo data: {summary.line()}")
    database.dispose()
    from gateway.wsgi import run_gunicorn  # noqa: PLC0415

    click.echo(f"FHIR endpoint: {settings.base_url} (metadata: {settings.base_url}/metadata)")
    run_gunicorn(settings)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database."""
    from gateway.store.database import make_engine, upgrade  # noqa: PLC0415

    settings = _settings()
    database = make_engine(settings.database_url)
    try:
        upgrade(database)
    finally:
        database.dispose()
    click.echo("schema is current")


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--source", default=None, help="Recorded as the source of every version written.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_command(paths: tuple[Path, ...], source: str | None, quiet: bool) -> None:
    """Import FHIR Bundles (JSON or XML), NDJSON files, or directories of them."""
    from gateway.importer import import_paths  # noqa: PLC0415

    settings = _settings()
    summary = import_paths(settings, list(paths), source=source, progress=not quiet)
    click.echo(summary.table())
    if summary.failures:
        for failure in summary.failures[:20]:
            click.echo(f"failed: {failure}", err=True)
        sys.exit(1)


@main.command()
@click.option("--patients", type=int, default=25, show_default=True, help="How many demo people to generate.")
def demo(patients: int) -> None:
    """Load generated demo records (crisis-response patients, programs and care teams)."""
    from gateway.demo import load_demo  # noqa: PLC0415

    summary = load_demo(_settings(), patients=patients)
    click.echo(summary.table())
