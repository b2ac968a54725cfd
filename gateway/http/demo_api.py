"""Demo-only pages (`gateway serve --demo`, loopback binds only; never registered otherwise).

- GET /demo/dispatch  what a CAD system does when it sends the crisis team: a fresh dispatch
  launch of the responder app for the demo's first person (a TPO consent, the crisis team on
  scene), for `demo-clinician`, and a redirect to the app's launch URL. Launches live five
  minutes, so the demo prints this link rather than a launch.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect

from gateway.demo import DEMO_APP, DEMO_DISPATCH_PATIENT, DEMO_DISPATCH_USER, demo_dispatch_encounter
from gateway.http.auth_api import app_launch_url

demo_api = Blueprint("demo_api", __name__, url_prefix="/demo")


@demo_api.get("/dispatch")
def dispatch() -> Response:
    server = current_app.extensions["smart_server"]
    settings = current_app.config["GATEWAY_SETTINGS"]
    app_client = server.accounts.client(DEMO_APP)
    if app_client is None or not app_client.launch_url:
        return Response("The responder app is not registered: run scripts/demo.", 404, mimetype="text/plain")
    launch_id = server.create_launch(client_id=DEMO_APP, created_by="demo-dispatch", patient=DEMO_DISPATCH_PATIENT,
                                     username=DEMO_DISPATCH_USER, encounter=demo_dispatch_encounter(),
                                     incident="CAD-DEMO-0001", purpose="TREAT")  # fmt: skip
    return redirect(app_launch_url(app_client.launch_url, settings.base_url, launch_id), 303)
