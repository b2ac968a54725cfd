"""Production serving: gunicorn with the app factory (`gateway serve`), or `gateway.wsgi:app`
for any WSGI server (`gunicorn 'gateway.wsgi:app'`)."""

from __future__ import annotations

import socket
from typing import Any

import orjson
from gunicorn import util
from gunicorn.app.base import BaseApplication

from gateway.settings import Settings

# gunicorn answers what never reaches the application (a request line longer than
# `limit_request_line`, header fields past `limit_request_field_size`, a malformed request) with
# an HTML page. The gateway is a FHIR server: every answer, those included, is an
# OperationOutcome. gunicorn writes them through `util.write_error`; each worker replaces it.
ISSUE_CODES = {400: "invalid", 403: "forbidden", 414: "too-long", 417: "not-supported", 431: "too-long",
               500: "exception", 501: "not-supported"}  # fmt: skip
LIMIT_REQUEST_LINE = 8190  # the most gunicorn allows; FHIR search URLs are long
LIMIT_REQUEST_FIELD_SIZE = 16384


def write_operation_outcome(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    diagnostics = {414: "the request line is too long: send long searches as POST _search",
                   431: "a request header is too large"}.get(status_int) or reason  # fmt: skip
    body = orjson.dumps({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": ISSUE_CODES.get(status_int, "processing"), "diagnostics": diagnostics}]})  # fmt: skip
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/fhir+json; "
            f"charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    util.write_nonblock(sock, head.encode("latin1") + body)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.settings.port}")
        self.cfg.set("workers", self.settings.workers)
        self.cfg.set("worker_class", self.settings.worker_class)
        if self.settings.worker_class == "gthread":
            self.cfg.set("threads", self.settings.threads)
        self.cfg.set("timeout", 60)
        self.cfg.set("accesslog", None)  # request lines carry ids and search terms: patient data
        self.cfg.set("limit_request_line", LIMIT_REQUEST_LINE)
        self.cfg.set("limit_request_field_size", LIMIT_REQUEST_FIELD_SIZE)
        # gunicorn (25.1+) opens a control socket at one path per user ($XDG_RUNTIME_DIR or
        # ~/.gunicorn/gunicorn.ctl): a second gateway on the machine would take over the first's.
        # The gateway is managed by signals and its service manager, so it opens none.
        self.cfg.set("control_socket_disable", True)
        if self.settings.tls_certfile:
            self.cfg.set("certfile", self.settings.tls_certfile)
            self.cfg.set("keyfile", self.settings.tls_keyfile)

    def load(self) -> Any:
        from gateway.app import create_app  # noqa: PLC0415

        util.write_error = write_operation_outcome  # in this worker: gunicorn's own errors as FHIR
        app = create_app(self.settings, upgrade_sqlite=False)
        if self.settings.pull_scheduler:
            from gateway.app import build_engine  # noqa: PLC0415
            from gateway.pull.scheduler import Scheduler  # noqa: PLC0415

            # Each worker has one; the lease in the store lets one of them pull (docs/pull.md).
            database = app.extensions["database"]
            Scheduler(database, build_engine(self.settings, database, operator=True), app.extensions["clock"],
                      tick_seconds=self.settings.pull_tick_seconds).start()  # fmt: skip
        return app


def run_gunicorn(settings: Settings) -> None:
    _Gunicorn(settings).run()


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first access so importing this module has no side effects
        from gateway.app import create_app  # noqa: PLC0415

        return create_app()
    raise AttributeError(name)
