"""The operators' page of the sources the gateway pulls from: how each is doing, in a browser."""

from __future__ import annotations

from datetime import datetime

import requests
from playwright.sync_api import Browser

from gateway.pull.sources import Sources
from tests.conftest import LiveServer
from tests.gateway.auth.harness import PASSWORD, Harness
from tests.pages import serious_violations, watch_csp


def test_operators_see_each_sources_status_and_others_do_not(smart_server: LiveServer, browser: Browser) -> None:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.add_user("root", role="admin", practitioner=None, organization=None)
    harness.add_user("ada")
    sources = Sources(smart_server.server.app.extensions["database"])
    sources.add("eastside-otp", base_url="https://ehr.eastside.example/fhir", client_id="crisis-gateway",
                organization="Organization/eastside-otp", part2_program=True, now=datetime(2026, 12, 6))  # fmt: skip
    sources.record_run("eastside-otp", datetime(2026, 12, 6, 9), None, [])
    sources.record_run("eastside-otp", datetime(2026, 12, 6, 10), "https://ehr.eastside.example/fhir/Condition: 503 after 5 tries",
                       ["eastside-otp Condition (entries 0-0): Condition.subject is required (Condition.subject)"])  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refused = watch_csp(page)
    for username, allowed in (("ada", False), ("root", True)):
        page.context.clear_cookies()
        page.goto(f"{harness.root}/operator/sources")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        if not allowed:
            page.get_by_role("heading", name="For operators").wait_for()
            assert "eastside-otp" not in page.content()
            continue
        page.get_by_role("heading", name="Sources the gateway pulls from").wait_for()
        text = page.inner_text("main")
        assert "failing" in text and "503 after 5 tries" in text and "Condition.subject is required" in text
        assert "a 42 CFR Part 2 program" in text and "(lag: " in text
        assert serious_violations(page) == []
        harness.push("eastside-otp-ehr", {"resourceType": "Patient", "id": "o-1", "name": [{"family": "Ito"}]},
                     part2=True, organization="Organization/eastside-otp")  # fmt: skip
        # A refused push quotes the value at fault to the integrator, never to the operators.
        token = harness.backend_token(harness._backends["eastside-otp-ehr"])
        bad = {"resourceType": "Patient", "id": "o-2", "gender": "Zanzibar"}
        answer = requests.put(f"{harness.base}/Patient/o-2", json=bad, timeout=10,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})  # fmt: skip
        assert answer.status_code == 422
        own = requests.get(f"{harness.root}/auth/conformance", headers={"Authorization": f"Bearer {token}"},
                           timeout=10).json()  # fmt: skip
        assert "Zanzibar" in own["pushes"][0]["reason"] and own["pushes"][0]["problems"] == [
            "code-invalid at Patient.gender"
        ]
        page.goto(f"{harness.root}/operator/clients/eastside-otp-ehr/conformance")
        page.get_by_role("heading", name="What was written, with the labels applied").wait_for()
        written = page.inner_text("main")
        assert "Patient\t1 (PUT)" in written and "Part 2" in written and "o-1" not in written  # by type, no ids
        assert "code-invalid at Patient.gender" in written and "Zanzibar" not in page.content()
        assert serious_violations(page) == []
    assert refused == []
    context.close()
