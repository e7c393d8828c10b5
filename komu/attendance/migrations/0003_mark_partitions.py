"""PostgreSQL: attendance marks partitioned by month (declarative RANGE partitioning on `date`); SQLite keeps the
plain table and this migration does nothing there.

The table is rebuilt once: a partitioned copy with the same columns, one partition per month that already has marks
plus the current month and three ahead, a DEFAULT partition for anything outside them, the rows copied, the old
table dropped, and every constraint and index re-created under its old name (so later migrations find them). The
primary key becomes (id, date) because a partitioned table's keys must contain the partition column; ids stay
UUIDs unique by construction, and Django still addresses rows by id. New months are added ahead of time by
`komu partitions ensure` (komu.ops.partitions, on a timer); retention drops whole months.

This rebuild holds the table's lock while it copies: on an install that already has millions of marks, run the
upgrade in a quiet hour (docs/operations.md, "Upgrades"). It is the only migration of that kind.
"""

import datetime

from django.db import migrations

TABLE = "attendance_mark"
MONTHS_AHEAD = 3


def _month_add(day, months):
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def _definitions(cursor):
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype <> 'p' ORDER BY conname", [TABLE])
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
        "ORDER BY i.relname", [TABLE])
    indexes = cursor.fetchall()
    return constraints, indexes


def _rebuild(cursor, *, partitioned):
    constraints, indexes = _definitions(cursor)
    suffix = " PARTITION BY RANGE (date)" if partitioned else ""
    cursor.execute(f"CREATE TABLE {TABLE}_rebuild (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING STORAGE){suffix}")
    if partitioned:
        cursor.execute(f"SELECT DISTINCT date_trunc('month', date)::date FROM {TABLE}")
        months = {row[0] for row in cursor.fetchall()}
        this_month = datetime.date.today().replace(day=1)
        months |= {_month_add(this_month, n) for n in range(MONTHS_AHEAD + 1)}
        for month in sorted(months):
            end = _month_add(month, 1)
            cursor.execute(
                f"CREATE TABLE {TABLE}_y{month.year}m{month.month:02d} PARTITION OF {TABLE}_rebuild "
                f"FOR VALUES FROM ('{month.isoformat()}') TO ('{end.isoformat()}')")
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE}_rebuild DEFAULT")
    cursor.execute(f"INSERT INTO {TABLE}_rebuild SELECT * FROM {TABLE}")
    cursor.execute(f"DROP TABLE {TABLE}")
    cursor.execute(f"ALTER TABLE {TABLE}_rebuild RENAME TO {TABLE}")
    key = "(id, date)" if partitioned else "(id)"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY {key}")
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        cursor.execute(definition)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=True)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("attendance", "0002_save_receipts_long_absence")]
    operations = [migrations.RunPython(forwards, backwards)]
