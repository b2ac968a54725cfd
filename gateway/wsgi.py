"""Production serving: gunicorn with the app factory (`gateway serve`), or `gateway.wsgi:app`
for any WSGI server (`gunicorn 'gateway.wsgi:app'`)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.settings import Settings


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

    def load(self) -> Any:
        from gateway.app import create_app  # noqa: PLC0415

        return create_app(self.settings, upgrade_sqlite=False)


def run_gunicorn(settings: Settings) -> None:
    _Gunicorn(settings).run()


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first access so importing this module has no side effects
        from gateway.app import create_app  # noqa: PLC0415

        return create_app()
    raise AttributeError(name)
