"""PostgreSQL: the audit log partitioned by month (declarative RANGE partitioning on `occurred_at`, months in UTC);
SQLite keeps the plain table and this migration does nothing there.

Modelled on attendance 0003. The table is rebuilt once: a partitioned copy with the same columns, one partition per
month that already has events plus the current month and three ahead, a DEFAULT partition, the rows copied as they
are (ids, MACs and timestamps untouched, so the HMAC chain still verifies), the old table dropped, every index
re-created under its old name. The primary key becomes (id, occurred_at) because a partitioned table's keys must
contain the partition column; ids stay unique by construction (audit_record appends under one advisory lock) and
`komu audit verify` finds any duplicate or gap. There is no id sequence to keep: audit_record numbers events itself.

The append-only guard is re-created on the partitioned table and extended to what partitioning opens:

- row triggers rejecting UPDATE and DELETE (cloned by PostgreSQL onto every partition, present and future);
- a TRUNCATE trigger on the parent AND on each partition (a statement trigger is not cloned, and TRUNCATE of one
  partition does not fire the parent's) — komu.ops.partitions adds it to every month it creates;
- event triggers refusing DROP of the audit table, its partitions or its triggers, and DETACH or RENAME of a
  partition — unless the purge switch of komu/audit/guard.py is on in the session, which only the retention
  service (komu.ops.partitions.audit_partitions_drop_before) and the partition maintenance turn on.

Event triggers need a PostgreSQL superuser. When `komu migrate` runs as the database owner only (the documented
production role), the migration says so and leaves them out; `komu audit ddl-guard` prints the SQL for the DBA to
run once as postgres (docs/operations.md, "Partitions and retention").

This rebuild holds a write lock on the audit table while it copies (reads go on): time it on the restore drill's copy
and run it in a quiet hour (docs/operations.md gives a figure per million rows).
"""

import datetime

from django.db import migrations

TABLE = "audit_auditevent"
MONTHS_AHEAD = 3
# Partition bounds are written with an explicit UTC offset so they never depend on the session's TimeZone.
UTC = "00:00:00+00"

ROW_TRIGGER = (
    f"CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION komu_audit_append_only()"
)


def truncate_trigger(table):
    return (f"CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION komu_audit_append_only()")


# The names the event triggers protect: the parent, its months and its DEFAULT partition.
NAMES = r"^audit_auditevent(_y[0-9]{4}m[0-9]{2}|_default)?$"

DDL_GUARD = [
    f"""CREATE OR REPLACE FUNCTION komu_audit_guard_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
       DECLARE dropped record;
       BEGIN
         IF coalesce(current_setting('komu.audit_purge', true), 'off') = 'on' THEN RETURN; END IF;
         FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
           IF (dropped.object_type = 'table' AND dropped.object_name ~ '{NAMES}')
              OR (dropped.object_type = 'trigger'
                  AND dropped.object_identity ~ ' on ([a-z0-9_]+\\.)?audit_auditevent(_y[0-9]{{4}}m[0-9]{{2}}|_default)?$') THEN
             RAISE EXCEPTION 'audit log is append-only: DROP of % rejected', dropped.object_identity;
           END IF;
         END LOOP;
       END $$""",
    f"""CREATE OR REPLACE FUNCTION komu_audit_guard_alter() RETURNS event_trigger LANGUAGE plpgsql AS $$
       DECLARE stray text;
       BEGIN
         IF coalesce(current_setting('komu.audit_purge', true), 'off') = 'on' THEN RETURN; END IF;
         -- A table named as an audit month that is no longer a partition of the audit table: detached (or the
         -- audit table itself renamed away from its partitions).
         SELECT c.relname INTO stray FROM pg_class c
          WHERE c.relkind IN ('r', 'p') AND c.relname ~ '{NAMES}' AND c.relname <> 'audit_auditevent'
            AND NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                             WHERE i.inhrelid = c.oid AND p.relname = 'audit_auditevent'
                               AND p.relnamespace = c.relnamespace)
          LIMIT 1;
         IF stray IS NOT NULL THEN
           RAISE EXCEPTION 'audit log is append-only: % left the audit table (DETACH or RENAME rejected)', stray;
         END IF;
         -- A partition of the audit table under another name: renamed (a step towards dropping it unnoticed).
         SELECT c.relname INTO stray FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           JOIN pg_class p ON p.oid = i.inhparent
          WHERE p.relname = 'audit_auditevent' AND c.relname !~ '{NAMES}'
          LIMIT 1;
         IF stray IS NOT NULL THEN
           RAISE EXCEPTION 'audit log is append-only: RENAME of a partition to % rejected', stray;
         END IF;
       END $$""",
    """CREATE EVENT TRIGGER komu_audit_guard_drop ON sql_drop
       EXECUTE FUNCTION komu_audit_guard_drop()""",
    """CREATE EVENT TRIGGER komu_audit_guard_alter ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
       EXECUTE FUNCTION komu_audit_guard_alter()""",
]
DDL_GUARD_REVERSE = [
    "DROP EVENT TRIGGER IF EXISTS komu_audit_guard_alter",
    "DROP EVENT TRIGGER IF EXISTS komu_audit_guard_drop",
    "DROP FUNCTION IF EXISTS komu_audit_guard_alter()",
    "DROP FUNCTION IF EXISTS komu_audit_guard_drop()",
]


def is_superuser(cursor):
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cursor.fetchone()
    return bool(row and row[0])


def _month_add(day, months):
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def _definitions(cursor):
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype NOT IN ('p', 't') ORDER BY conname", [TABLE])
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
        "ORDER BY i.relname", [TABLE])
    indexes = cursor.fetchall()
    return constraints, indexes


def _rebuild(cursor, *, partitioned):
    # Writers wait (readers go on) until the copy is in place: an event appended to the old table during the copy
    # would otherwise be lost with it.
    cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
    constraints, indexes = _definitions(cursor)
    suffix = " PARTITION BY RANGE (occurred_at)" if partitioned else ""
    cursor.execute(f"CREATE TABLE {TABLE}_rebuild (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING STORAGE){suffix}")
    parts = []
    if partitioned:
        cursor.execute(f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM {TABLE}")
        months = {row[0] for row in cursor.fetchall()}
        this_month = datetime.datetime.now(datetime.timezone.utc).date().replace(day=1)
        months |= {_month_add(this_month, n) for n in range(MONTHS_AHEAD + 1)}
        for month in sorted(months):
            name, end = f"{TABLE}_y{month.year}m{month.month:02d}", _month_add(month, 1)
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {TABLE}_rebuild "
                f"FOR VALUES FROM ('{month.isoformat()} {UTC}') TO ('{end.isoformat()} {UTC}')")
            parts.append(name)
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE}_rebuild DEFAULT")
        parts.append(f"{TABLE}_default")
    cursor.execute(f"INSERT INTO {TABLE}_rebuild SELECT * FROM {TABLE}")  # noqa: S608 - fixed names
    cursor.execute(f"DROP TABLE {TABLE}")
    cursor.execute(f"ALTER TABLE {TABLE}_rebuild RENAME TO {TABLE}")
    key = "(id, occurred_at)" if partitioned else "(id)"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY {key}")
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        cursor.execute(definition)
    # The append-only triggers of migration 0002 went with the old table: the same again, on every table.
    cursor.execute(ROW_TRIGGER)
    for table in [TABLE, *parts]:
        cursor.execute(truncate_trigger(table))


# audit_record asks for the newest event through this function: PL/pgSQL caches its plan per session, where the
# plain query would be planned again over every monthly partition on every write. Kept when going back (it works
# on the plain table too, and the code of this version calls it).
CHAIN_HEAD = """CREATE OR REPLACE FUNCTION komu_audit_chain_head() RETURNS TABLE (id bigint, mac varchar)
   LANGUAGE plpgsql STABLE AS $$
   BEGIN
     RETURN QUERY SELECT e.id, e.mac FROM audit_auditevent e ORDER BY e.id DESC LIMIT 1;
   END $$"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=True)
        cursor.execute(CHAIN_HEAD, params=None)
        if is_superuser(cursor):
            for sql in DDL_GUARD:
                cursor.execute(sql, params=None)
        else:
            print(  # noqa: T201 - a migration's only way to tell the operator
                "\n  audit 0003: 監査ログの DDL ガード（イベントトリガー）は PostgreSQL のスーパーユーザーが必要なため"
                "作成していません。`komu audit ddl-guard` の表示する SQL を postgres で一度実行してください。")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for sql in DDL_GUARD_REVERSE:
            cursor.execute(sql)
        _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]
    operations = [migrations.RunPython(forwards, backwards)]
