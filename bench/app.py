"""The responder app: first render of the brief after a dispatch launch, and page weight. Prints
its figures; asserts nothing.

  .venv/bin/python bench/app.py [--launches 100] [--pause 0.2]

The gateway (`gateway serve`, gunicorn, SMART on) with the demo county loaded, and the app
(smart_app under gunicorn) beside it, each on its own port, as scripts/demo runs them. A county
CAD (a registered dispatch client) creates a launch for the demo clinician and the TPO person;
a scripted browser opens the link, signs in at the gateway (the first time; after that its
gateway session carries it), allows, and lands on the brief. Per launch:
- `link to brief`: every hop from opening the link to the brief's HTML (the app's /launch,
  the gateway's authorize and consent, the app's /callback with its code exchange, the brief);
- `callback to brief`: what the responder waits for after tapping Allow (the code exchange, the
  redirect and the brief, fetched from the gateway and rendered);
beside a plain `GET Patient/{id}` with a user token (the baseline, same run, alternated).
Then the weight of each page (its HTML, CSS and scripts together; no fonts, no images). All of
it twice, on gateways of their own: with the launch's read-ahead of the record (the default)
and without it, each link opened `--pause` seconds after its launch.
Targets (issue 15): first render under 1 s, page weight under 100 KB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import lxml.html
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import Server, free_port, wait_until_up  # noqa: E402
from joserfc.jwk import ECKey  # noqa: E402

from gateway.auth.accounts import Accounts  # noqa: E402
from gateway.auth.tokens import Tokens  # noqa: E402
from gateway.demo import (  # noqa: E402
    DEMO_APP,
    DEMO_APP_SCOPE,
    DEMO_DISPATCH_PATIENT,
    DEMO_PASSWORD,
    _id,
    ensure_demo_accounts,
    load_demo,
)
from gateway.settings import load_settings  # noqa: E402
from gateway.store.database import open_database  # noqa: E402

# The baseline reads a person of the mental-health centre (the dispatched person's Patient comes from
# a Part 2 program: alone, it is not released).
BASELINE_PATIENT = _id("patient", 2)
CAD_TOKEN = "bench-cad-token-" + "x" * 30
USER_TOKEN = "bench-user-token-" + "x" * 30
SPLIT: list[tuple[float, float]] = []  # per launch: the app's code exchange, then the brief page


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


class App:
    """smart_app under gunicorn, as scripts/demo starts it."""

    def __init__(self, workdir: Path, fhir_base: str) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        key = ECKey.generate_key("P-384", parameters={"kid": "bench-app"})
        self.key_file = workdir / "app-key.json"
        self.key_file.write_text(json.dumps(key.as_dict(private=True)))
        self.public_jwks = {"keys": [key.as_dict(private=False)]}
        env = {**os.environ, "SMART_APP_BASE_URL": self.base, "SMART_APP_FHIR_BASE_URL": fhir_base,
               "SMART_APP_PRIVATE_KEY_FILE": str(self.key_file), "SMART_APP_SECRET_KEY": "bench-secret",
               "SMART_APP_DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}"}  # fmt: skip
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.process = subprocess.Popen(
            [gunicorn, "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--threads", "4",
             "--no-control-socket", "--log-level", "warning", "smart_app.app:create_app()"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_up(f"{self.base}/", "the responder app")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def register(database_url: str, fhir_base: str, app: App) -> None:
    """What an operator does (docs/app.md): the app, a CAD dispatch client; the demo county."""
    settings = load_settings(database_url=database_url, base_url=fhir_base)
    load_demo(settings)
    ensure_demo_accounts(settings)
    database = open_database(database_url)
    accounts = Accounts(database)
    accounts.add_client(client_id=DEMO_APP, name="Responder app", kind="asymmetric", purpose="app",
                        scope=DEMO_APP_SCOPE, redirect_uris=[f"{app.base}/callback"], launch_url=f"{app.base}/launch",
                        jwks=app.public_jwks)  # fmt: skip
    accounts.add_client(client_id="county-cad", name="County CAD", kind="asymmetric", purpose="dispatch",
                        scope="system/Patient.rs", jwks_uri="https://cad.example/jwks.json")  # fmt: skip
    tokens = Tokens(database)
    tokens.save(access_token=CAD_TOKEN, refresh_token=None, client_id="county-cad", username=None,
                scope="system/Patient.rs", context={"purpose": "dispatch"}, lifetime=36000)  # fmt: skip
    tokens.save(access_token=USER_TOKEN, refresh_token=None, client_id=DEMO_APP, username="demo-clinician",
                scope="openid fhirUser user/*.rs", context={"role": "crisis-clinician", "purpose": "TREAT"},
                lifetime=36000)  # fmt: skip
    database.dispose()


def hidden_fields(page: str) -> list[tuple[str, str]]:
    """What a browser submits of the page's first form untouched: hidden fields, checked boxes."""
    document = lxml.html.fromstring(page)
    fields = document.xpath("(//form)[1]//input[@type='hidden' or (@type='checkbox' and @checked)]")
    return [(str(f.get("name")), str(f.get("value") or "")) for f in fields]


def launch_once(browser: requests.Session, root: str, app: App, pause: float) -> tuple[float, float, str]:
    """One dispatch: (link to brief, callback to brief) in ms, and the brief's HTML."""
    created = requests.post(f"{root}/launch", timeout=30, headers={"Authorization": f"Bearer {CAD_TOKEN}"},
                            json={"client_id": DEMO_APP, "patient": DEMO_DISPATCH_PATIENT, "user": "demo-clinician",
                                  "incident": "CAD-BENCH", "encounter": "bench-encounter"})  # fmt: skip
    created.raise_for_status()
    time.sleep(pause)
    started = time.perf_counter()
    answer = browser.get(created.json()["launch_url"], allow_redirects=False, timeout=30)  # the app: to the gateway
    answer = browser.get(answer.headers["Location"], allow_redirects=False, timeout=30)  # the authorize endpoint
    if answer.status_code == 303 and "/auth/login" in answer.headers["Location"]:
        login = browser.get(urljoin(root, answer.headers["Location"]), timeout=30)
        form = [*hidden_fields(login.text), ("username", "demo-clinician"), ("password", DEMO_PASSWORD)]
        answer = browser.post(f"{root}/auth/login", data=form, allow_redirects=False, timeout=30)
        answer = browser.get(urljoin(root, answer.headers["Location"]), allow_redirects=False, timeout=30)
    if answer.status_code == 200:  # the gateway's consent page: Allow
        form = [*hidden_fields(answer.text), ("decision", "approve")]
        answer = browser.post(f"{root}/auth/authorize/consent", data=form, allow_redirects=False, timeout=30)
    callback = answer.headers["Location"]
    allowed = time.perf_counter()
    exchanged = browser.get(callback, allow_redirects=False, timeout=30)  # the app's /callback: the code exchange
    signed_in = time.perf_counter()
    brief = browser.get(urljoin(callback, exchanged.headers["Location"]), timeout=30)  # the brief, fetched and shown
    done = time.perf_counter()
    SPLIT.append(((signed_in - allowed) * 1000, (done - signed_in) * 1000))
    if brief.status_code != 200 or not brief.url.endswith(f"/person/{DEMO_DISPATCH_PATIENT}"):
        raise RuntimeError(f"the launch did not land on the brief: {brief.status_code} {brief.url}")
    return (done - started) * 1000, (done - allowed) * 1000, brief.text


def page_weight(browser: requests.Session, url: str) -> tuple[int, int]:
    """The page's HTML and every stylesheet and script it loads, in bytes; and how many files."""
    page = browser.get(url, timeout=30)
    assets = re.findall(r'<(?:link rel="stylesheet" href|script src)="([^"]+)"', page.text)
    total = len(page.content) + sum(len(browser.get(urljoin(url, a), timeout=30).content) for a in assets)
    return total, 1 + len(assets)


def measure(launches: int, read_ahead: bool, pause: float) -> dict[str, object]:
    """The gateway and the app on a store of their own; `launches` dispatch launches, each link
    opened `pause` seconds after the CAD created it (a responder reads the page, then taps)."""
    SPLIT.clear()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-app-bench-"))
    database_url = f"sqlite:///{workdir / 'gateway.sqlite3'}"
    os.environ["GATEWAY_LAUNCH_READ_AHEAD"] = "true" if read_ahead else "false"
    gateway = Server(database_url, auth="smart")
    root = gateway.base.removesuffix("/fhir")
    app = App(workdir, gateway.base)
    try:
        register(database_url, gateway.base, app)
        browser = requests.Session()
        launch_once(browser, root, app, pause)  # the first signs in at the gateway; not counted
        plain = requests.Session()
        links, callbacks, reads = [], [], []
        brief = ""
        for _ in range(launches):
            started = time.perf_counter()
            plain.get(f"{gateway.base}/Patient/{BASELINE_PATIENT}", timeout=30,
                      headers={"Authorization": f"Bearer {USER_TOKEN}"}).raise_for_status()  # fmt: skip
            reads.append((time.perf_counter() - started) * 1000)
            link, callback, brief = launch_once(browser, root, app, pause)
            links.append(link)
            callbacks.append(callback)
        weights = {}
        for label, url in (("start", f"{app.base}/"), ("find", f"{app.base}/find"),
                           ("brief", f"{app.base}/person/{DEMO_DISPATCH_PATIENT}"),
                           ("outcome", f"{app.base}/person/{DEMO_DISPATCH_PATIENT}/outcome"),
                           ("emergency", f"{app.base}/emergency")):  # fmt: skip
            weights[label] = page_weight(browser if label != "start" else requests.Session(), url)
    finally:
        app.stop()
        gateway.stop()
    return {"links": links, "callbacks": callbacks, "reads": reads, "brief": brief, "weights": weights,
            "exchange": statistics.median(e for e, _ in SPLIT[1:]), "page": statistics.median(b for _, b in SPLIT[1:])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=100)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between a launch and its link opened")
    args = parser.parse_args()
    found = measure(args.launches, True, args.pause)
    without = measure(args.launches, False, args.pause)
    links, callbacks, reads = found["links"], found["callbacks"], found["reads"]
    assert isinstance(links, list) and isinstance(callbacks, list) and isinstance(reads, list)
    print(f"dispatch launches: {args.launches}, each link opened {args.pause:g} s after its launch; the demo county "
          f"(SQLite, one gunicorn worker each)")  # fmt: skip
    for label, values in (("link to brief", links), ("callback to brief", callbacks),
                          ("plain GET Patient/{id}", reads)):  # fmt: skip
        print(f"  {label:24} median {statistics.median(values):7.1f} ms   p95 {p95(values):7.1f} ms")
    print(
        f"  of which: the app's code exchange at the gateway {found['exchange']:.1f} ms, the brief page "
        f"(fetched from the gateway and rendered) {found['page']:.1f} ms (medians)"
    )
    print(f"  first render / plain read (medians): {statistics.median(callbacks) / statistics.median(reads):.1f}x; "
          f"target: first render under 1,000 ms")  # fmt: skip
    other = without["callbacks"]
    assert isinstance(other, list)
    print(f"  without the launch's read-ahead (same run, a gateway of its own): callback to brief median "
          f"{statistics.median(other):.1f} ms, p95 {p95(other):.1f} ms; the brief page {without['page']:.1f} ms")  # fmt: skip
    brief = str(found["brief"])
    cards = brief.count('<section class="card')
    part2 = "with the Part 2 notice" if "42 CFR Part 2 records" in brief else "WITHOUT Part 2 content"
    print(f"  the brief has {cards} cards, {part2}")
    print("page weight (HTML + CSS + scripts; target under 100 KB):")
    weights = found["weights"]
    assert isinstance(weights, dict)
    for label, (size, files) in weights.items():
        print(f"  {label:10} {size / 1024:6.1f} KB in {files} files")


if __name__ == "__main__":
    main()
