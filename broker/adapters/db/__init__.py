"""The database adapter: SQLModel tables, repositories, unit of work and Alembic migrations."""
