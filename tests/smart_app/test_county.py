"""The responder app in the county world (tests/gateway/consent/world.py), over real HTTP: a
police co-responder sees visibly less by the same rules, emergency access is offered to medical
personnel only and opens what a medical emergency releases for its window, and the outcome goes
back to the care teams."""

from __future__ import annotations

import re
import time

import requests
from sqlalchemy import select

from gateway.store.schema import audit_event, emergency_review
from tests.gateway.consent.test_outcomes import crisis_encounter
from tests.gateway.consent.world import OTP, POLICE, World, consent
from tests.smart_app.conftest import ResponderApp
from tests.smart_app.test_sign_in import _csrf, _sign_in

County = tuple[World, ResponderApp]


def brief_of(browser: requests.Session, app: ResponderApp, name: str, purpose: str = "TREAT") -> requests.Response:
    """Search by name, confirm the first match, open the brief."""
    search = browser.get(f"{app.base}/find", timeout=10)
    found = browser.post(f"{app.base}/find", data={"csrf": _csrf(search.text), "name": name, "purpose": purpose},
                         timeout=10)  # fmt: skip
    person = re.search(r'action="/person/([^/"]+)/confirm"|href="/person/([^/"]+)"', found.text)
    if person is None:
        return found
    patient = person.group(1) or person.group(2)
    return browser.post(f"{app.base}/person/{patient}/confirm", data={"csrf": _csrf(found.text)}, timeout=10)


def cards(page: str) -> dict[str, str]:
    """Each section card's title and text, "Nothing on file" cards left out."""
    found = re.findall(r'<section class="card[^"]*" aria-label="([^"]+)">(.*?)</section>', page, re.S)
    return {title: body for title, body in found if "Nothing on file" not in body}


def test_a_police_co_responder_sees_visibly_less_by_the_same_rules(county: County) -> None:
    world, app = county
    world.push("otp", consent("maria-police", "maria", "part2-specific", disclosers=[OTP],
                              recipients=[{"reference": POLICE}], purposes=["crisis-coordination"],
                              classes=["STATUS", "CONTACT", "CRISISPLAN"]))  # fmt: skip
    clinician = brief_of(_sign_in(world.harness, app, f"{app.base}/login"), app, "Maria Rivera")
    police = brief_of(_sign_in(world.harness, app, f"{app.base}/login", username="lee"), app, "Maria Rivera",
                      purpose="crisis-coordination")  # fmt: skip
    assert clinician.status_code == police.status_code == 200, (clinician.text[:300], police.text[:300])
    for clinical in ("Opioid dependence", "buprenorphine", "Major depressive disorder"):
        assert clinical in clinician.text and clinical not in police.text
    assert len(cards(police.text)) < len(cards(clinician.text))
    assert len(police.text) < len(clinician.text)
    # Every card with content says where it came from and how fresh it is (the basis card is the
    # gateway's own words).
    for title, body in [*cards(clinician.text).items(), *cards(police.text).items()]:
        if title != "Basis and notice":
            assert re.search(r'<p class="source">From [^<]+ · updated', body), (title, body)
    # Part 2 content is on both screens, and with it the notice.
    assert "42 CFR Part 2 records" in police.text and "42 CFR Part 2 records" in clinician.text
    # What the app offers follows the role: no emergency access and no outcome form for police.
    assert "Record the outcome" in clinician.text and "Medical emergency" in clinician.text
    assert "Record the outcome" not in police.text and "Medical emergency" not in police.text


def test_emergency_access_for_medical_personnel_with_its_window(county: County) -> None:
    """dana is known only to her opioid treatment program, with no consent: nothing to see, until
    a clinician declares a medical emergency."""
    world, app = county
    browser = _sign_in(world.harness, app, f"{app.base}/login")
    before = brief_of(browser, app, "Dana Quinlan")
    assert "No record found" in before.text and "Medical emergency: emergency access" in before.text
    form = browser.get(f"{app.base}/emergency", timeout=10)
    assert form.status_code == 200
    for promise in ("60 minutes", "The programs whose records you see are told", "Never counseling"):
        assert promise in form.text
    refused = browser.post(f"{app.base}/emergency", data={"csrf": _csrf(form.text), "nature": " "}, timeout=10)
    assert refused.status_code == 400 and "Say what the emergency is" in refused.text
    started = browser.post(f"{app.base}/emergency", timeout=10,
                           data={"csrf": _csrf(form.text), "nature": "unresponsive, suspected opioid overdose"})  # fmt: skip
    assert started.url.endswith("/find") and "Emergency access" in started.text and "60 min" in started.text
    brief = brief_of(browser, app, "Dana Quinlan")
    assert brief.status_code == 200 and "Opioid dependence" in brief.text and "42 CFR Part 2 records" in brief.text
    assert 'data-countdown="' in brief.text
    assert 'href="tel:2026' not in brief.text  # "(2026-11-20)" beside a result is a date, not a number to call
    with world.database().connect() as connection:
        emergencies = connection.execute(select(audit_event.c.seq).where(audit_event.c.recipient == "ada",
                                                                         audit_event.c.emergency.is_(True))).all()  # fmt: skip
        assert emergencies  # documented at the gateway, not in the app
        assert connection.execute(select(emergency_review.c.audit_seq)).all()
    # Ended (or run out): the next brief is an ordinary one again.
    browser.post(f"{app.base}/emergency/end", data={"csrf": _csrf(brief.text)}, timeout=10)
    assert "No record found" in brief_of(browser, app, "Dana Quinlan").text
    browser.post(f"{app.base}/emergency", timeout=10, data={"csrf": _csrf(form.text), "nature": "overdose"})
    with app.store.engine.begin() as connection:  # as if the hour had passed
        for session_id, data in connection.exec_driver_sql("SELECT session_id, data FROM app_session").all():
            if "emergency" in data:
                changed = re.sub(r'"until":[0-9.e+]+', f'"until":{time.time() - 1}', data)
                connection.exec_driver_sql(
                    "UPDATE app_session SET data = ? WHERE session_id = ?", (changed, session_id)
                )
    assert "No record found" in brief_of(browser, app, "Dana Quinlan").text


def test_emergency_access_is_not_offered_to_police(county: County) -> None:
    world, app = county
    browser = _sign_in(world.harness, app, f"{app.base}/login", username="lee")
    page = browser.get(f"{app.base}/emergency", timeout=10)
    assert page.status_code == 403 and "medical personnel only" in page.text
    forced = browser.post(f"{app.base}/emergency", data={"csrf": _csrf(browser.get(f"{app.base}/find").text),
                                                         "nature": "overdose"}, timeout=10)  # fmt: skip
    assert forced.status_code == 403


def test_the_outcome_goes_back_to_the_care_teams(county: County) -> None:
    world, app = county
    browser = _sign_in(world.harness, app, f"{app.base}/login")
    assert "Record the outcome" in brief_of(browser, app, "Maria Rivera").text
    form = browser.get(f"{app.base}/person/maria/outcome", timeout=10)
    assert form.status_code == 200 and "Stayed home with a safety plan" in form.text
    unpicked = browser.post(f"{app.base}/person/maria/outcome", data={"csrf": _csrf(form.text)}, timeout=10)
    assert unpicked.status_code == 400 and "Pick what happened" in unpicked.text
    done = browser.post(f"{app.base}/person/maria/outcome", timeout=10, data={
        "csrf": _csrf(form.text), "disposition": "stayed-home-safety-plan", "note": "Sister staying tonight."})  # fmt: skip
    assert done.status_code == 200 and "Outcome recorded" in done.text
    assert "Eastside Recovery Services (OTP)" in done.text and "Harbor Community Mental Health" in done.text
    assert crisis_encounter(world)["status"] == "finished"
    police = _sign_in(world.harness, app, f"{app.base}/login", username="lee")
    assert police.get(f"{app.base}/person/maria/outcome", timeout=10).status_code == 403
