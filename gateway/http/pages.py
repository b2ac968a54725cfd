"""The gateway's front door for people: `GET /` says what this is and where each of its users
goes (responders, compliance officers, EHR integrators), and `/docs/` serves the operator and
integrator documentation from this deployment, rendered, so a newcomer needs no repository.

Scripts asking `GET /` for JSON (Accept: application/json) still get the short JSON answer."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from markdown_it import MarkdownIt

from gateway import __version__
from gateway.settings import PROJECT_ROOT

pages = Blueprint("pages", __name__, template_folder="templates")
DOCS = PROJECT_ROOT / "docs"
DOC_NAME = re.compile(r"^[A-Za-z0-9_-]+\.md$")


@pages.get("/")
def home() -> Response:
    settings = current_app.config["GATEWAY_SETTINGS"]
    if request.accept_mimetypes.best_match(["text/html", "application/json"], default="text/html") != "text/html":
        return jsonify({"service": "crisis-fhir-gateway", "fhir": settings.base_url, "version": __version__})
    server = current_app.extensions["smart_server"]
    apps = [c for c in server.accounts.clients() if c.purpose == "app" and not c.disabled and c.launch_url]
    root = settings.base_url.removesuffix("/fhir")
    return Response(render_template("home.html", base=settings.base_url, root=root, apps=apps, docs=_doc_list(),
                                    version=__version__))  # fmt: skip


@pages.get("/docs/")
def docs_index() -> Response:
    return Response(render_template("docs_index.html", docs=_doc_list()))


@pages.get("/docs/<name>")
def doc(name: str) -> Response:
    if not DOC_NAME.match(name) or name not in dict(_doc_list()):
        abort(404)
    title, html = _rendered(DOCS / name)
    return Response(render_template("doc.html", title=title, body=html, docs=_doc_list()))


@cache
def _doc_list() -> list[tuple[str, str]]:
    """(file name, title) of each page in docs/, ARCHITECTURE first; empty when not shipped."""
    if not DOCS.is_dir():
        return []
    found = [(path.name, _title(path)) for path in sorted(DOCS.glob("*.md")) if DOC_NAME.match(path.name)]
    return sorted(found, key=lambda item: (item[0] != "ARCHITECTURE.md", item[1].lower()))


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


@cache
def _rendered(path: Path) -> tuple[str, str]:
    # Raw HTML in the Markdown is shown as text, never passed through: the pages' CSP and our
    # own rule (no inline script) hold for documentation too.
    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    html = renderer.render(path.read_text(encoding="utf-8"))
    # Code blocks and wide tables scroll sideways on a phone: keyboard users must reach them too.
    return _title(path), html.replace("<pre>", '<pre tabindex="0">').replace("<table>", '<table tabindex="0">')
