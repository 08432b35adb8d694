"""The schema's history as Alembic migrations, shipped inside the package.

``dispatcher db upgrade`` runs them (:mod:`dispatcher.store.versioning`); ``script_location`` is
this package (``dispatcher.store:migrations``), so no ``alembic.ini`` or checkout is needed. Each
revision is frozen in time: it spells out its own tables and columns and never imports
:mod:`dispatcher.store.schema`, which describes only the newest. Every revision has a downgrade,
and every one runs on SQLite (batch mode) and PostgreSQL.

A new revision: ``scripts/new-migration "what changes"`` (autogenerate against the models),
then add its id to :data:`dispatcher.store.versioning.REVISIONS`.
"""
