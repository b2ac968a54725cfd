"""The application factory: settings in, a Flask app with the FHIR engine wired in out."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy import Engine as SqlEngine
from werkzeug.wrappers import Response

from gateway.fhir.engine import Engine, EngineConfig
from gateway.http.fhir_api import fhir_api
from gateway.settings import Settings, load_settings
from gateway.store.database import open_database
from gateway.store.repository import SqlStore


def build_engine(settings: Settings, database: SqlEngine) -> Engine:
    store = SqlStore(database, settings.base_url)
    config = EngineConfig(
        base_url=settings.base_url,
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        strict_search_by_default=settings.default_search_handling == "strict",
        max_bundle_entries=settings.max_bundle_entries,
    )
    return Engine(store, config)


def create_app(settings: Settings | None = None, *, upgrade_sqlite: bool = True) -> Flask:
    settings = settings or load_settings()
    logging.getLogger("gateway").setLevel(settings.log_level)
    database = open_database(settings.database_url, upgrade_sqlite=upgrade_sqlite)
    app = Flask("gateway")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["GATEWAY_SETTINGS"] = settings
    app.extensions["fhir_engine"] = build_engine(settings, database)
    app.extensions["database"] = database
    app.register_blueprint(fhir_api, url_prefix="/fhir")

    @app.get("/")
    def index() -> Response:
        return jsonify({"service": "crisis-fhir-gateway", "fhir": settings.base_url})

    @app.get("/healthz")
    def health() -> Response:
        with database.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return jsonify({"status": "ok"})

    return app
