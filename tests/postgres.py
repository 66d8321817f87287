"""PostgreSQL for tests: a schema of the test's own on the server BROKER_TEST_DATABASE_URL names."""

import secrets
from collections.abc import Iterator

from sqlalchemy import create_engine, make_url, text

POSTGRES_URL_VARIABLE = "BROKER_TEST_DATABASE_URL"
# The databases the SQL store's tests run on: SQLite always, PostgreSQL when a server is given.
SQL_DATABASES = ["sqlite", "postgresql"]


def postgres_schema(server_url: str) -> Iterator[str]:
    """A URL whose connections see only a new schema (tables and alembic_version alike)."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(server_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
