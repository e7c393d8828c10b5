"""Append-only triggers on the audit table, for SQLite and PostgreSQL. See komu/audit/guard.py for the purge
switch they honour (retention and the test suite's flush)."""

from django.db import migrations

SQLITE = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE rejected'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
       WHEN komu_audit_purge() = 0
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE rejected'); END""",
]
SQLITE_REVERSE = ["DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete"]

POSTGRES = [
    """CREATE FUNCTION komu_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         -- Only whole-row removal by retention (or the test flush) may pass, never an edit.
         IF TG_OP IN ('DELETE', 'TRUNCATE')
            AND coalesce(current_setting('komu.audit_purge', true), 'off') = 'on' THEN
           RETURN OLD;
         END IF;
         RAISE EXCEPTION 'audit log is append-only: % rejected', TG_OP;
       END $$""",
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
       FOR EACH ROW EXECUTE FUNCTION komu_audit_append_only()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
       FOR EACH STATEMENT EXECUTE FUNCTION komu_audit_append_only()""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER audit_event_no_truncate ON audit_auditevent",
    "DROP TRIGGER audit_event_append_only ON audit_auditevent",
    "DROP FUNCTION komu_audit_append_only()",
]


def forwards(apps, schema_editor):
    statements = SQLITE if schema_editor.connection.vendor == "sqlite" else POSTGRES
    for sql in statements:
        # params=None: the PL/pgSQL body's RAISE format uses "%", which must not be read as a placeholder.
        schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):
    statements = SQLITE_REVERSE if schema_editor.connection.vendor == "sqlite" else POSTGRES_REVERSE
    for sql in statements:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
