"""Alembic scripts for the store's schema; run them through ``stores.schema``, not the alembic CLI."""
