"""`GET /public-health/counts`: de-identified counts for a public health authority (42 CFR 2.54).

    GET /public-health/counts?measure=treatment-episodes|crisis-encounters
        &group-by=year,zip3,age-group,gender,program&purpose=PUBHLTH[&format=csv]

For users with role `epidemiologist` (policy `public_health_roles`), purpose PUBHLTH. The answer
is a table of counts by the dimensions asked for, computed from Safe Harbor rows; cells under 11
are suppressed (`null`) and no totals are given. A request for anything identifying (a name, a
birth date, a five-digit ZIP, a date) is refused whole, whoever asks: a line list is never
de-identified. Both answers are audited.
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, jsonify, request

from consent_engine.public_health import DIMENSIONS, count, decide_counts
from gateway.auth.accounts import User
from gateway.consent.audit import AuditLog, Requested, audit_record
from gateway.consent.public_health import MEASURES, restricted_zip3, safe_harbor_rows
from gateway.http.token_user import Refused, refused, token_user

public_health_api = Blueprint("public_health_api", __name__, url_prefix="/public-health")


def _requested(user: User | None) -> Requested:
    return Requested(line=f"{request.method} {request.full_path.rstrip('?')}", interaction="public-health-counts",
                     user=user.username if user else None, client=None, role=user.role if user else None,
                     purpose=request.args.get("purpose"))  # fmt: skip


def _audit(user: User | None, status: int, error: Exception | None, entries: list[object]) -> None:
    store = current_app.extensions["fhir_engine"].store
    with store.unit_of_work(True) as (repository, now):
        record = audit_record(_requested(user), entries, status, error, now)
        AuditLog(current_app.extensions["database"]).append(repository.connection, [record])


@public_health_api.errorhandler(Refused)
def _refused(error: Refused) -> Response:
    if error.status != 503:
        _audit(None, error.status, error, [])
    return refused(error)


@public_health_api.get("/counts")
def counts() -> Response:
    user = token_user(lambda u: True, "")
    policy = current_app.extensions["consent_release"].policy
    measure = request.args.get("measure", "treatment-episodes")
    if measure not in MEASURES:
        raise Refused(400, "invalid_request", f"measure must be one of {', '.join(MEASURES)}")
    dimensions = [d.strip() for d in request.args.get("group-by", "year").split(",") if d.strip()]
    decision = decide_counts(user.role, request.args.get("purpose"), dimensions, policy.public_health_roles)
    if not decision.permitted:
        error = Refused(403, "access_denied", f"{decision.reason}: {decision.citation}")
        _audit(user, 403, error, list(decision.alerts))
        return refused(error)
    try:
        with current_app.extensions["database"].connect() as connection:
            table = count(safe_harbor_rows(connection, measure), dimensions, policy.minimum_cell)
        _audit(user, 200, None, [])  # written before the counts leave
    except Exception as error:
        raise Refused(503, "temporarily_unavailable", "the counts cannot be computed now; try again") from error
    census, _ = restricted_zip3()
    if request.args.get("format") == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*table.dimensions, "count"])
        for cell in table.cells:
            writer.writerow([*cell.key, "suppressed" if cell.count is None else cell.count])
        response = Response(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{measure}.csv"'
        return response
    return jsonify({
        "measure": measure,
        "dimensions": list(table.dimensions),
        "cells": [{**dict(zip(table.dimensions, cell.key, strict=True)), "count": cell.count} for cell in table.cells],
        "suppressed_cells": table.suppressed,
        "method": {"de_identification": "45 CFR 164.514(b)(2) Safe Harbor", "basis": decision.citation,
                   "minimum_cell": table.minimum_cell, "zip3_census": census, "dimensions_allowed": list(DIMENSIONS)},
    })  # fmt: skip
