"""Alembic environment of the study database.

hemiface runs it itself (:mod:`hemiface.study._migrate`), handing over an open
connection in ``config.attributes["connection"]`` inside a transaction that it
commits; no ``alembic.ini`` is needed. Offline mode (``--sql``) writes the SQL for
the URL in ``sqlalchemy.url``, for a database administrator to review and apply.
"""

from alembic import context

from hemiface.study._models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("hemiface's migrations run through hemiface.study.upgrade_study "
                           "(`hemiface study upgrade DIR`), which passes the connection")
    # SQLite cannot ALTER most of a table: batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():  # inside hemiface's transaction: hemiface commits
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
