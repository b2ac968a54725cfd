"""The gateway's front door: GET / as a page for people (JSON for scripts that ask), and the
documentation rendered at /docs/, with the pages' security headers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway.http import pages


def test_home_is_a_page_that_says_what_this_is_and_where_to_go(client: FlaskClient) -> None:
    answer = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "<h1>Crisis-response FHIR gateway</h1>" in page
    for section in ("For responders", "For compliance officers", "For EHR integrators", "Documentation"):
        assert section in page
    base = "http://127.0.0.1:8080/fhir"
    assert f'href="{base}/metadata"' in page and f'href="{base}/.well-known/smart-configuration"' in page
    # Every link on it that this gateway serves answers (the docs, the metadata, the sign-in).
    links = set(re.findall(r'href="([^"]+)"', page))
    assert len(links) > 10
    for link in links:
        path = link.removeprefix("http://127.0.0.1:8080")
        if path.startswith("/") and not path.startswith("/static/"):
            assert client.get(path).status_code in (200, 303), link  # 303: /auth/manage asks to sign in


def test_scripts_asking_for_json_still_get_json(client: FlaskClient) -> None:
    answer = client.get("/", headers={"Accept": "application/json"})
    assert answer.mimetype == "application/json"
    assert json.loads(answer.data)["fhir"] == "http://127.0.0.1:8080/fhir"


def test_pages_carry_a_strict_content_security_policy(client: FlaskClient) -> None:
    for path in ("/", "/docs/", "/docs/consent.md", "/auth/login"):
        answer = client.get(path)
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "script-src" not in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert not re.search(r"<script|<style|style=", answer.get_data(as_text=True)), path
    with client.get("/static/gateway.css") as stylesheet:
        assert stylesheet.status_code == 200 and stylesheet.mimetype == "text/css"
    # FHIR answers are not pages: no page policy on JSON.
    assert "Content-Security-Policy" not in client.get("/fhir/metadata").headers


def test_the_docs_are_rendered_with_their_tables_and_links(client: FlaskClient) -> None:
    index = client.get("/docs/").get_data(as_text=True)
    for name in ("ARCHITECTURE.md", "auth.md", "consent.md", "fhir-api.md"):
        assert f'href="/docs/{name}"' in index
    page = client.get("/docs/auth.md").get_data(as_text=True)
    assert "<h1>" in page and '<table tabindex="0">' in page and "<code>assertion_leeway_seconds</code>" in page


@pytest.mark.parametrize("name", ["../README.md", "..%2FREADME.md", "nothing.md", "auth.md.bak", "%2Fetc%2Fpasswd"])
def test_only_the_shipped_docs_are_served(client: FlaskClient, name: str) -> None:
    assert client.get(f"/docs/{name}").status_code == 404


def test_raw_html_in_a_doc_is_shown_as_text(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text('# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n')
    title, html = pages._rendered(doc)
    assert title == "Title"
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
