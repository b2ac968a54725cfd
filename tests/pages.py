"""What every page test checks in the browser: axe-core finds no serious or critical
accessibility problem, and the page's Content-Security-Policy refused nothing it needed."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

_AXE = Axe()


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    results = _AXE.run(page)
    found: list[dict[str, Any]] = results.response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in found if v["impact"] in ("serious", "critical")]  # fmt: skip


def watch_csp(page: Page) -> list[str]:
    """Collect the browser's Content-Security-Policy complaints while the page is used."""
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return refused
