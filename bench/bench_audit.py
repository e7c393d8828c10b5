"""Throughput of audit_record (chain head read + HMAC + insert, one per transaction, as a service does it) against
plain single-row inserts of the same width, one per transaction."""

from __future__ import annotations

from django.db import connection, transaction

from bench.timing import best_of, line

N = 2000


def run() -> list[str]:
    from komu.audit.services import audit_record

    def audited() -> None:
        for i in range(N):
            with transaction.atomic():
                audit_record(actor=None, action="bench.event", object_type="bench.object", object_id=str(i),
                             fields=["family_name"])

    def plain() -> None:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bench_events (id bigint, action text, object_id text, "
                           "fields text, mac text)")
        for i in range(N):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_events VALUES (%s, %s, %s, %s, %s)",
                               [i, "bench.event", str(i), '["family_name"]', "x" * 74])

    t_audit = best_of(3, audited)
    t_plain = best_of(3, plain)
    return [line("audit_record, one event per transaction (HMAC chain)", N, t_audit,
                 "single-row INSERT per transaction via the driver", t_plain)]
