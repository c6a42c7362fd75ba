"""SQLite's insert trigger keeps the hourly rollups with one UPSERT a rollup row instead of an
insert-or-ignore and an update (accounts/rollup_sql.py); the triggers are made again. PostgreSQL's
are unchanged."""

from django.db import migrations

from accounts import rollup_sql


def _remake(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor != "sqlite":
        return
    for statement in rollup_sql.drop_statements(vendor) + rollup_sql.create_statements(vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_usage_rollup"),
    ]

    operations = [
        migrations.RunPython(_remake, migrations.RunPython.noop),
    ]
