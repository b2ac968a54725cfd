"""The official Python SMART client (fhirclient 4.4, with PKCE) against the gateway."""

from __future__ import annotations

import requests
from fhirclient import client
from fhirclient.models.patient import Patient

from tests.gateway.auth.harness import REDIRECT, Harness


def test_fhirclient_completes_a_standalone_launch_and_reads_the_patient(smart: Harness) -> None:
    settings = {
        "app_id": "responder-app",
        "api_base": smart.base,
        "redirect_uri": REDIRECT,
        "scope": "openid fhirUser patient/*.read",
    }
    app = client.FHIRClient(settings=settings)
    authorize_url = app.authorize_url  # discovers the endpoints from the CapabilityStatement
    assert authorize_url.startswith(f"{smart.root}/auth/authorize?")
    assert "code_challenge_method=S256" in authorize_url
    browser = requests.Session()
    result = smart.walk(browser, browser.get(authorize_url, allow_redirects=False, timeout=10), patient="pat-1")
    assert "code" in result.params, result.body[:300]
    app.handle_callback(result.location)
    assert app.ready and app.patient_id == "pat-1"
    patient = Patient.read("pat-1", app.server)
    assert patient.name[0].family == "Rivera"
    assert app.human_name(patient.name[0]) == "Maria Rivera"
