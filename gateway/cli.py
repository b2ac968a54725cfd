"""The `gateway` command: serve, db upgrade, import, demo, client, user, keys."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from gateway.settings import Settings, SettingsError, check_sandbox, is_loopback, load_settings


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


class _Gateway(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from gateway.store.database import SchemaNotCurrent  # noqa: PLC0415

        try:
            return super().invoke(ctx)
        except SchemaNotCurrent as error:  # any command on a store that was never upgraded
            raise click.ClickException(str(error)) from None


@click.group(cls=_Gateway)
def main() -> None:
    """Crisis-response FHIR gateway."""


@main.command()
@click.option("--host", help="Address to bind (default from settings: 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default from settings: 8080).")
@click.option("--workers", type=int, help="gunicorn worker processes (default from settings: 1).")
@click.option("--demo/--no-demo", default=False, help="Load the demo records before serving.")
@click.option("--demo-app", "demo_app", metavar="URL",
              help="With --demo: register the responder app (smart_app) served at URL, as scripts/demo does.")  # fmt: skip
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate chain (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    demo: bool,
    demo_app: str | None,
    certfile: str | None,
    keyfile: str | None,
) -> None:
    """Run the gateway under gunicorn (the production server), over TLS with --certfile/--keyfile."""
    settings = _settings(host=host, port=port, workers=workers, tls_certfile=certfile, tls_keyfile=keyfile)
    if settings.auth == "off" and not is_loopback(settings.host):
        raise click.ClickException(
            f'refusing to bind {settings.host} with auth = "off": without SMART authorization the gateway '
            "serves loopback addresses only (127.0.0.1, ::1)"
        )
    try:
        check_sandbox(settings)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    if demo and not is_loopback(settings.host):
        raise click.ClickException("--demo creates a sign-in with a published password: loopback binds only")
    if not settings.secret_key:
        # One key for all workers of this run; sign-in sessions end with a restart.
        settings = settings.model_copy(update={"secret_key": secrets.token_urlsafe(32)})
    from gateway.store.database import open_database  # noqa: PLC0415

    open_database(settings.database_url).dispose()  # SQLite upgrades itself; PostgreSQL must be current
    if demo:
        from gateway.demo import ensure_demo_accounts, load_demo  # noqa: PLC0415

        settings = settings.model_copy(update={"demo": True})
        summary = load_demo(settings)
        click.echo(f"demo data: {summary.line()}")
        for line in ensure_demo_accounts(settings):
            click.echo(line)
        if demo_app:
            from gateway.demo import ensure_demo_app  # noqa: PLC0415
            from gateway.settings import PROJECT_ROOT  # noqa: PLC0415

            for line in ensure_demo_app(settings, demo_app.rstrip("/"), PROJECT_ROOT / "var" / "smart-app-key.json"):
                click.echo(line)
    from gateway.wsgi import run_gunicorn  # noqa: PLC0415

    if not settings.tls_certfile and not is_loopback(settings.host):
        click.echo(
            f"warning: serving plain HTTP on {settings.host}; SMART requires TLS beyond loopback: put a TLS-terminating "
            "proxy in front or pass --certfile and --keyfile",
            err=True,
        )
    click.echo(f"FHIR endpoint: {settings.base_url} (metadata: {settings.base_url}/metadata)")
    run_gunicorn(settings)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database."""
    from sqlalchemy import inspect  # noqa: PLC0415

    from gateway.store.database import make_engine, upgrade  # noqa: PLC0415

    settings = _settings()
    database = make_engine(settings.database_url)
    try:
        before, after = upgrade(database)
        tables = len(inspect(database).get_table_names())
    finally:
        database.dispose()
    where = database.url.render_as_string(hide_password=True)
    if before is None:
        click.echo(f"created the schema in {where}: {tables} tables, at revision {after}")
    elif before != after:
        click.echo(f"upgraded the schema in {where} from revision {before} to {after}")
    else:
        click.echo(f"the schema in {where} was already current (revision {after}); nothing to do")


SHOWN_FAILURES = 20


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--source", default=None, help="Recorded as the source of every version written.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--failures", "failures_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write every failure to this file, one a line (the terminal shows the first 20).")  # fmt: skip
def import_command(paths: tuple[Path, ...], source: str | None, quiet: bool, failures_file: Path | None) -> None:
    """Import FHIR Bundles (JSON or XML), NDJSON files, or directories of them."""
    from gateway.importer import import_paths  # noqa: PLC0415

    settings = _settings()
    summary = import_paths(settings, list(paths), source=source, progress=not quiet)
    click.echo(summary.table())
    if failures_file is not None:
        failures_file.write_text("".join(f"{failure}\n" for failure in summary.failures), encoding="utf-8")
    if summary.failures:
        for failure in summary.failures[:SHOWN_FAILURES]:
            click.echo(f"failed: {failure}", err=True)
        rest = len(summary.failures) - SHOWN_FAILURES
        if rest > 0:
            where = f"all {len(summary.failures)} are in {failures_file}" if failures_file else (
                "`--failures FILE` writes them all")  # fmt: skip
            click.echo(f"... and {rest} more failures not shown: {where}", err=True)
        sys.exit(1)


@main.command()
@click.option("--patients", type=int, default=25, show_default=True, help="How many demo people to generate.")
def demo(patients: int) -> None:
    """Load generated demo records (crisis-response patients, programs and care teams)."""
    from gateway.demo import load_demo  # noqa: PLC0415

    summary = load_demo(_settings(), patients=patients)
    click.echo(summary.table())


# -- SMART: clients, users, keys -------------------------------------------------------------------
@contextmanager
def _accounts() -> Iterator[Any]:
    """Accounts on the configured store, whose connections are closed when the command ends."""
    from gateway.app import clock_for  # noqa: PLC0415
    from gateway.auth.accounts import Accounts  # noqa: PLC0415
    from gateway.store.database import open_database  # noqa: PLC0415

    settings = _settings()
    database = open_database(settings.database_url)
    try:
        yield Accounts(database, clock_for(settings, database))
    finally:
        database.dispose()


def _emit(as_json: bool, data: Any, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        for line in lines:
            click.echo(line)


def _read_jwks(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
        document = json.loads(text)
    except (OSError, ValueError) as error:
        raise click.ClickException(f"--jwks must be a JWKS document or @file: {error}") from None
    return document if isinstance(document, dict) else {"keys": document}


@main.group()
def source() -> None:
    """EHRs the gateway pulls from, as a SMART Backend Services client (docs/pull.md)."""


@contextmanager
def _sources() -> Iterator[tuple[Any, Settings]]:
    from gateway.pull.sources import Sources  # noqa: PLC0415
    from gateway.store.database import open_database  # noqa: PLC0415

    settings = _settings()
    database = open_database(settings.database_url)
    try:
        yield Sources(database), settings
    finally:
        database.dispose()


@source.command("add")
@click.argument("source_id")
@click.option("--base-url", required=True, help="The EHR's FHIR base URL.")
@click.option("--client-id", required=True, help="The client id the EHR registered the gateway under.")
@click.option("--organization", required=True, help="The source Organization (its data is labelled as it sends it).")
@click.option(
    "--part2", is_flag=True, help="The source is a 42 CFR Part 2 program: everything it sends is Part 2 data."
)
@click.option("--types", default=",".join(("Patient", "EpisodeOfCare", "CareTeam", "Condition", "MedicationStatement",
                                           "CarePlan", "Flag")), show_default=True, help="Resource types to pull.")  # fmt: skip
@click.option("--every", "every_minutes", type=click.IntRange(1, 1440), default=15, show_default=True,
              help="Minutes between runs.")  # fmt: skip
@click.option("--alg", type=click.Choice(["ES384", "RS384"]), default="ES384", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def source_add(source_id: str, base_url: str, client_id: str, organization: str, part2: bool, types: str,
               every_minutes: int, alg: str, as_json: bool) -> None:  # fmt: skip
    """Add a source; prints the JWKS URL to register at the EHR."""
    from gateway.clock import SYSTEM_CLOCK  # noqa: PLC0415
    from gateway.fhir.dates import utc_now  # noqa: PLC0415
    from gateway.pull.sources import SourceError  # noqa: PLC0415

    with _sources() as (sources, settings):
        try:
            added = sources.add(source_id, base_url=base_url, client_id=client_id, organization=organization,
                                part2_program=part2, resource_types=tuple(t.strip() for t in types.split(",") if t.strip()),
                                every_minutes=every_minutes, algorithm=alg, now=utc_now(SYSTEM_CLOCK))  # fmt: skip
        except SourceError as error:
            raise click.ClickException(str(error)) from None
    jwks_url = f"{settings.base_url.removesuffix('/fhir')}/auth/sources/{source_id}/jwks.json"
    _emit(as_json, {**added.public_view(), "jwks_url": jwks_url},
          [f"source {source_id} added; register the gateway at the EHR as client {client_id} with the JWKS at",
           f"  {jwks_url}", f"and the scope {added.scope}"])  # fmt: skip


@source.command("list")
@click.option("--json", "as_json", is_flag=True)
def source_list(as_json: bool) -> None:
    """Each source and how its last run went."""
    from gateway.clock import SYSTEM_CLOCK  # noqa: PLC0415
    from gateway.fhir.dates import utc_now  # noqa: PLC0415

    now = utc_now(SYSTEM_CLOCK)
    with _sources() as (sources, _):
        found = sources.all()
    _emit(as_json, [s.public_view(now) for s in found],
          [f"{s.source_id}: {s.base_url} {'(disabled) ' if s.disabled else ''}last success "
           f"{s.last_success_at or 'never'} (lag {s.lag(now) or 'unknown'}); "
           + (f"FAILING since {s.last_error_at}: {s.last_error}" if s.last_error_at and
              (s.last_success_at is None or s.last_error_at > s.last_success_at) else "no error since")
           + f"; {len(s.refused)} refused on the last run" for s in found] or ["no sources"])  # fmt: skip


@source.command("show")
@click.argument("source_id")
@click.option("--json", "as_json", is_flag=True)
def source_show(source_id: str, as_json: bool) -> None:
    """One source, with the resources refused on its last run and why."""
    with _sources() as (sources, _):
        found = sources.get(source_id)
        cursors = {t: sources.cursor(source_id, t) for t in found.resource_types} if found else {}
    if found is None:
        raise click.ClickException(f"no source {source_id!r}")
    view = {**found.public_view(), "cursors": cursors}
    _emit(as_json, view, [f"{k}: {v}" for k, v in view.items()])


@source.command("disable")
@click.argument("source_id")
def source_disable(source_id: str) -> None:
    """Stop pulling from a source (its data stays)."""
    from gateway.pull.sources import SourceError  # noqa: PLC0415

    with _sources() as (sources, _):
        try:
            sources.set_disabled(source_id)
        except SourceError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"source {source_id} disabled")


@source.command("run")
@click.argument("source_id")
@click.option(
    "--bulk", is_flag=True, help="Through the source's Bulk Data $export (a first load, or a large catch-up)."
)
@click.option("--json", "as_json", is_flag=True)
def source_run(source_id: str, bulk: bool, as_json: bool) -> None:
    """Pull what changed at the source now. Exit 1 if the run failed."""
    from gateway.app import build_engine  # noqa: PLC0415
    from gateway.clock import SYSTEM_CLOCK  # noqa: PLC0415
    from gateway.fhir.dates import utc_now  # noqa: PLC0415
    from gateway.pull.client import SourceClient  # noqa: PLC0415
    from gateway.pull.sync import bulk_load, sync_source  # noqa: PLC0415

    with _sources() as (sources, settings):
        found = sources.get(source_id)
        if found is None:
            raise click.ClickException(f"no source {source_id!r}")
        if found.disabled:
            raise click.ClickException(f"source {source_id} is disabled")
        engine = build_engine(settings, sources.database, operator=True)
        run = bulk_load if bulk else sync_source
        result = run(engine, sources, found, SourceClient(found), utc_now(SYSTEM_CLOCK))
    _emit(as_json, {"source": source_id, "pages": result.pages, "imported": result.summary.line(),
                    "refused": result.refused, "error": result.error},
          [f"{source_id}: {result.pages} pages; {result.summary.line()}",
           *(f"refused: {r}" for r in result.refused), *([f"ERROR: {result.error}"] if result.error else [])])  # fmt: skip
    if result.error:
        sys.exit(1)


@main.group()
def client() -> None:
    """Register, list and disable SMART clients (apps, EHRs, dispatch systems)."""


@client.command("add")
@click.argument("client_id")
@click.option("--name", required=True, help="Shown to users on the consent page.")
@click.option(
    "--kind",
    type=click.Choice(["public", "symmetric", "asymmetric"]),
    required=True,
    help="public (PKCE only), symmetric (client secret), asymmetric (private_key_jwt).",
)
@click.option(
    "--purpose",
    type=click.Choice(["app", "ehr", "dispatch", "service"]),
    default="app",
    show_default=True,
    help="app: SMART App Launch; ehr/dispatch/service: SMART Backend Services.",
)
@click.option(
    "--scope", required=True, help="The most this client may be granted, e.g. 'launch openid fhirUser patient/*.rs'."
)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Apps: a registered redirect URI (repeatable).")
@click.option("--launch-url", help="Apps: where an EHR launch opens the app.")
@click.option("--jwks-url", help="Asymmetric clients: the client's JWKS URL (preferred).")
@click.option("--jwks", help="Asymmetric clients: an inline JWKS, or @file.")
@click.option("--organization", help="EHR clients: the source Organization, e.g. Organization/eastside-otp.")
@click.option("--part2-program", is_flag=True, help="EHR clients: the source is a 42 CFR Part 2 program.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def client_add(client_id: str, name: str, kind: str, purpose: str, scope: str, redirect_uris: tuple[str, ...],
               launch_url: str | None, jwks_url: str | None, jwks: str | None, organization: str | None,
               part2_program: bool, as_json: bool) -> None:  # fmt: skip
    """Register a client. A symmetric client's secret is printed once; store it now."""
    from gateway.auth.accounts import AccountError  # noqa: PLC0415

    try:
        with _accounts() as accounts:
            registered, secret = accounts.add_client(
            client_id=client_id, name=name, kind=kind, purpose=purpose, scope=scope, redirect_uris=redirect_uris,
                launch_url=launch_url, jwks_uri=jwks_url, jwks=_read_jwks(jwks), organization=organization,
                part2_program=part2_program,
            )  # fmt: skip
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    view = registered.public_view()
    if secret:
        view["client_secret"] = secret
    lines = [f"registered {purpose} client {client_id} ({kind})"]
    if secret:
        lines.append(f"client secret (shown once): {secret}")
    _emit(as_json, view, lines)


@client.command("invite")
@click.option(
    "--organization", required=True, help="The organization the EHR sends for, e.g. Organization/eastside-otp."
)
@click.option("--part2", is_flag=True, help="It is a 42 CFR Part 2 program: everything it sends is Part 2 data.")
@click.option(
    "--hours", type=click.IntRange(1, 24 * 30), default=72, show_default=True, help="How long it may be used."
)
def client_invite(organization: str, part2: bool, hours: int) -> None:
    """An initial access token for an EHR integrator to register their client with (RFC 7591),
    once; printed once (docs/integrators.md)."""
    from gateway.auth.registration import RegistrationError, invite  # noqa: PLC0415
    from gateway.clock import SYSTEM_CLOCK  # noqa: PLC0415
    from gateway.fhir.dates import utc_now  # noqa: PLC0415

    with _accounts() as accounts:
        try:
            token = invite(accounts.database, organization, part2, utc_now(SYSTEM_CLOCK), hours)
        except RegistrationError as error:
            raise click.ClickException(str(error)) from None
    click.echo(token)


@client.command("approve")
@click.argument("client_id")
def client_approve(client_id: str) -> None:
    """Let a client registered with an invitation (pending) get tokens."""
    with _accounts() as accounts:
        if accounts.client(client_id) is None:
            raise click.ClickException(f"no client {client_id!r}")
        accounts.set_client_disabled(client_id, False)
    click.echo(f"client {client_id} approved")


@client.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def client_list(as_json: bool) -> None:
    """List registered clients."""
    with _accounts() as accounts:
        clients = accounts.clients()
    _emit(
        as_json,
        [c.public_view() for c in clients],
        [f"{c.client_id:24} {c.purpose:9} {c.kind:11} {'disabled' if c.disabled else 'enabled ':9} {c.scope}"
         for c in clients],
    )  # fmt: skip


@client.command("disable")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def client_disable(client_id: str, as_json: bool) -> None:
    """Disable a client and revoke every token it holds."""
    from gateway.auth.accounts import AccountError  # noqa: PLC0415
    from gateway.auth.tokens import Tokens  # noqa: PLC0415

    with _accounts() as accounts:
        try:
            accounts.set_client_disabled(client_id)
        except AccountError as error:
            raise click.ClickException(str(error)) from None
        revoked = Tokens(accounts.database, clock=accounts.clock).revoke_all(client_id=client_id)
    _emit(as_json, {"client_id": client_id, "disabled": True, "tokens_revoked": revoked},
          [f"disabled {client_id}; revoked {revoked} tokens"])  # fmt: skip


@main.group()
def user() -> None:
    """Add, list and disable users (responders, dispatchers, compliance officers)."""


@user.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="The user's name, as shown to them and in audits.")
@click.option("--role", required=True, help="A role code from config/roles.toml, e.g. crisis-clinician.")
@click.option("--practitioner", help="Their fhirUser: Practitioner/<id>.")
@click.option("--practitioner-role", help="Their PractitionerRole/<id> (organization + role).")
@click.option("--organization", help="Organization/<id> they work for.")
@click.option("--totp", is_flag=True, help="Require a TOTP second factor; prints the provisioning URI once.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="GATEWAY_NEW_USER_PASSWORD",
    help="At least 12 characters (prompted when not given).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def user_add(username: str, display_name: str, role: str, practitioner: str | None, practitioner_role: str | None,
             organization: str | None, totp: bool, password: str, as_json: bool) -> None:  # fmt: skip
    """Add a user."""
    import pyotp  # noqa: PLC0415

    from gateway.auth.accounts import AccountError  # noqa: PLC0415

    try:
        with _accounts() as accounts:
            added = accounts.add_user(
            username=username, password=password, display_name=display_name, role=role, practitioner=practitioner,
                practitioner_role=practitioner_role, organization=organization, totp=totp,
            )  # fmt: skip
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    view = added.public_view()
    lines = [f"added {role} {username}"]
    if added.totp_secret:
        uri = pyotp.TOTP(added.totp_secret).provisioning_uri(name=username, issuer_name="Crisis gateway")
        view["totp_uri"] = uri
        lines.append(f"TOTP provisioning URI (shown once; load it in an authenticator app): {uri}")
    _emit(as_json, view, lines)


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def user_list(as_json: bool) -> None:
    """List users."""
    with _accounts() as accounts:
        users = accounts.users()
    _emit(
        as_json,
        [u.public_view() for u in users],
        [f"{u.username:20} {u.role:20} {'disabled' if u.disabled else 'enabled ':9} {u.practitioner or '-'}"
         for u in users],
    )  # fmt: skip


@user.command("disable")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def user_disable(username: str, as_json: bool) -> None:
    """Disable a user: sign-in stops and every app grant of theirs is revoked."""
    from gateway.auth.accounts import AccountError  # noqa: PLC0415
    from gateway.auth.tokens import Tokens  # noqa: PLC0415

    with _accounts() as accounts:
        try:
            accounts.set_user_disabled(username)
        except AccountError as error:
            raise click.ClickException(str(error)) from None
        revoked = Tokens(accounts.database, clock=accounts.clock).revoke_all(username=username)
    _emit(as_json, {"username": username, "disabled": True, "tokens_revoked": revoked},
          [f"disabled {username}; revoked {revoked} tokens"])  # fmt: skip


@main.group()
def keys() -> None:
    """The gateway's signing keys (id_tokens)."""


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def keys_rotate(as_json: bool) -> None:
    """Make a new signing key; the old one stays in the JWKS until its tokens have expired."""
    from gateway.auth.keys import Keys  # noqa: PLC0415

    with _accounts() as accounts:
        result = Keys(accounts.database, accounts.clock).rotate()
    _emit(
        as_json, result, [f"new signing key {result['kid']}; retired {result['retired']}, removed {result['removed']}"]
    )


@main.group()
def audit() -> None:
    """The consent engine's audit trail and disclosure ledger."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--file", "package_file", type=click.Path(exists=True, dir_okay=False),
              help="Check an audit package (from the compliance console) offline, without the store.")  # fmt: skip
def audit_verify(as_json: bool, package_file: str | None) -> None:
    """Check the hash chains; report the first broken link of each. Exit 1 if one is broken."""
    from gateway.consent.audit import AuditLog  # noqa: PLC0415

    if package_file:
        from gateway.consent.package import verify_package  # noqa: PLC0415

        try:
            package = json.loads(Path(package_file).read_bytes())
        except ValueError as error:
            raise click.ClickException(f"{package_file} is not JSON: {error}") from None
        held, problems = verify_package(package)
        _emit(as_json, {"verified": not problems, "held": held, "problems": problems},
              [*held, *(f"PROBLEM: {p}" for p in problems)] or ["the package holds no records"])  # fmt: skip
        if problems:
            sys.exit(1)
        return
    with _accounts() as accounts:
        reports = AuditLog(accounts.database).verify()
    _emit(
        as_json,
        [{"table": r.table, "rows": r.rows, "intact": r.intact, "first_broken": r.first_broken} for r in reports],
        [
            f"{r.table}: {r.rows} rows, " + ("intact" if r.intact else f"BROKEN at seq {r.first_broken}")
            for r in reports
        ],
    )
    if not all(r.intact for r in reports):
        sys.exit(1)


@audit.command("replay")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit_replay(as_json: bool) -> None:
    """Append the emergency accesses spooled while the store would not take them (audit_spool_dir)
    to the audit, and send their 42 CFR 2.51(c) Communications. Exit 1 if some remain."""
    from gateway.app import build_engine  # noqa: PLC0415
    from gateway.store.database import open_database  # noqa: PLC0415

    settings = _settings()
    database = open_database(settings.database_url)
    try:
        engine = build_engine(settings.model_copy(update={"auth": "smart"}), database)
        replayed = engine.replay_spool()
        remaining = len(list(Path(settings.audit_spool_dir).glob("*.json")))
    finally:
        database.dispose()
    _emit(as_json, {"replayed": replayed, "remaining": remaining},
          [f"replayed {replayed} spooled audit records; {remaining} remain"])  # fmt: skip
    if remaining:
        sys.exit(1)


# -- the sandbox clock -------------------------------------------------------------------------------
@main.group()
def clock() -> None:
    """The sandbox clock (settings: sandbox = true): show, set, advance or reset the gateway's time."""


@contextmanager
def _sandbox_clock() -> Iterator[Any]:
    from gateway.store.clock import SandboxClock  # noqa: PLC0415
    from gateway.store.database import open_database  # noqa: PLC0415

    settings = _settings()
    if not settings.sandbox:
        raise click.ClickException(
            "the gateway's clock is the system clock: moving it is for sandboxes only (sandbox = true, "
            "GATEWAY_SANDBOX=true, on a test deployment; never in production)"
        )
    database = open_database(settings.database_url)
    try:
        yield SandboxClock(database)
    finally:
        database.dispose()


def _clock_line(found: Any, as_json: bool) -> None:
    offset = found.offset()
    now = found.now()
    _emit(as_json, {"now": now.isoformat() + "Z", "offset_seconds": offset.total_seconds()},
          [f"gateway time: {now.isoformat()}Z (system clock {'+' if offset.total_seconds() >= 0 else '-'}"
           f"{abs(offset)})"])  # fmt: skip


@clock.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clock_show(as_json: bool) -> None:
    """The gateway's time and its offset from the system clock."""
    with _sandbox_clock() as found:
        _clock_line(found, as_json)


@clock.command("set")
@click.argument("instant")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clock_set(instant: str, as_json: bool) -> None:
    """Set the gateway's time to INSTANT (2027-03-01T09:00:00Z, or a date); it runs on from there."""
    from gateway.clock import parse_instant  # noqa: PLC0415

    try:
        moment = parse_instant(instant)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    with _sandbox_clock() as found:
        found.set(moment, by="operator")
        _clock_line(found, as_json)


@clock.command("advance")
@click.argument("duration")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clock_advance(duration: str, as_json: bool) -> None:
    """Move the gateway's time by DURATION (90d, 2h30m, -1d, P30D)."""
    from gateway.clock import parse_duration  # noqa: PLC0415

    try:
        delta = parse_duration(duration)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    with _sandbox_clock() as found:
        found.advance(delta, by="operator")
        _clock_line(found, as_json)


@clock.command("reset")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clock_reset(as_json: bool) -> None:
    """Back to the system clock."""
    with _sandbox_clock() as found:
        found.reset(by="operator")
        _clock_line(found, as_json)
