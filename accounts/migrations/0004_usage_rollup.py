"""Hourly usage rollups kept by database triggers (accounts/rollup_sql.py), filled once from the
records already there."""

from django.db import migrations, models

from accounts import rollup_sql


def _create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in rollup_sql.backfill(vendor) + rollup_sql.create_statements(vendor):
        schema_editor.execute(statement, params=None)


def _drop(apps, schema_editor):
    for statement in rollup_sql.drop_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_usage_attempts"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageHour",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("hour", models.DateTimeField()),
                ("key_id", models.BigIntegerField(default=0)),
                ("key_name", models.CharField(blank=True, max_length=100)),
                ("model", models.CharField(max_length=200)),
                ("requests", models.BigIntegerField(default=0)),
                ("errors", models.BigIntegerField(default=0)),
                ("prompt_tokens", models.BigIntegerField(default=0)),
                ("completion_tokens", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [models.UniqueConstraint(
                    fields=("hour", "key_id", "key_name", "model"), name="usagehour_unique")],
            },
        ),
        migrations.CreateModel(
            name="LatencyHour",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("hour", models.DateTimeField()),
                ("kind", models.PositiveSmallIntegerField()),
                ("bucket", models.BigIntegerField()),
                ("count", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [models.UniqueConstraint(
                    fields=("hour", "kind", "bucket"), name="latencyhour_unique")],
            },
        ),
        migrations.RunPython(_create, _drop),
    ]
