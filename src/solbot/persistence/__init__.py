"""Durable state: SQLAlchemy 2 models, Alembic migrations, the store the service writes."""
