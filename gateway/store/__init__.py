"""The store: every version of every resource, plus search index tables kept in the same DB
transaction as the write. SQLite (WAL) is the embedded default; PostgreSQL (JSONB) is production.
"""
