"""Storage: SQLAlchemy tables, the engine, the unit of work and Alembic migrations."""
