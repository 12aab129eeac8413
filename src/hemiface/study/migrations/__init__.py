"""Alembic migrations of the study database (``env.py``, ``versions/``); applied by :func:`hemiface.study.upgrade_study`."""
