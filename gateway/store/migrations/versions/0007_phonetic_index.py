"""Index what matching needs for the people already stored: the `phonetic` search parameter
(Soundex of family and given names) and the Patients' matching keys
(`mappings.matching.blocking_keys`), so that `$responder-match` finds old records too.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PEOPLE = ("Patient", "Practitioner", "RelatedPerson")
BATCH = 1000


def upgrade() -> None:
    from gateway.fhir.indexing import BLOCKING_PARAMETER, index_entries  # noqa: PLC0415

    connection = op.get_bind()
    resource = sa.table(
        "resource", sa.column("pk"), sa.column("type"), sa.column("deleted"), sa.column("content", sa.JSON)
    )
    columns = ("resource_pk", "type", "param")
    search_string = sa.table("search_string", *map(sa.column, (*columns, "value", "exact")))
    search_token = sa.table("search_token", *map(sa.column, (*columns, "system", "code")))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(resource.c.pk, resource.c.type, resource.c.content)
            .where(resource.c.type.in_(PEOPLE), resource.c.deleted == sa.false(), resource.c.pk > last)
            .order_by(resource.c.pk)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].pk
        strings, tokens = [], []
        for row in rows:
            entries = index_entries(row.content or {}, "")  # names need no base URL
            strings += [dict(zip((*columns, "value", "exact"), (row.pk, row.type, *values), strict=True))
                        for values in entries["string"] if values[0] == "phonetic"]  # fmt: skip
            tokens += [dict(zip((*columns, "system", "code"), (row.pk, row.type, *values), strict=True))
                       for values in entries["token"] if values[0] == BLOCKING_PARAMETER]  # fmt: skip
        if strings:
            connection.execute(search_string.insert(), strings)
        if tokens:
            connection.execute(search_token.insert(), tokens)


def downgrade() -> None:
    op.execute("DELETE FROM search_string WHERE param = 'phonetic'")
    op.execute("DELETE FROM search_token WHERE param = '_blocking'")
