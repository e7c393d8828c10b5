"""A board of 500 schools sends one notice to all of them (issue 5: ≤ 2 s), through komu.notices.services —
validation, 500 recipient rows, the audit event, and in-app notifications for the principal and school office of
every school (1,000 people) with their e-mails queued as a background task — beside a raw `executemany` of the same
500 recipient rows and 1,000 notification rows through the database driver, in the same run. The worker's part
(sending the 1,000 e-mails to the locmem backend) is timed apart: the sender does not wait for it.

`KOMU_BENCH_NOTICE_SCHOOLS` changes the number of schools (default 500).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone


def _world(n: int) -> tuple[Any, Any]:
    from komu.access.scope import get_actor
    from komu.accounts.models import User
    from komu.core.codes import make_school_code
    from komu.directory.models import Board, Prefecture, Role, School, StaffAssignment

    prefecture = Prefecture.objects.get(code="27")
    board, _ = Board.objects.get_or_create(code="279901", defaults={
        "name": "ベンチ市教育委員会", "kind": Board.Kind.MUNICIPAL, "prefecture": prefecture})
    if not School.objects.filter(board=board).exists():
        School.objects.bulk_create([
            School(code=make_school_code("B1", "27", "2", f"{9000000 + i:07d}"), name=f"ベンチ市立第{i + 1}小学校",
                   school_type="B1", board=board, prefecture=prefecture)
            for i in range(n)
        ])
        schools = list(School.objects.filter(board=board))
        users = [User(username=f"bench-n-{s.code}-{role}", email=f"{role}-{s.code}@example.jp",
                      display_name="ベンチ") for s in schools for role in ("p", "a")]
        for u in users:
            u.set_unusable_password()
        User.objects.bulk_create(users, batch_size=500)
        by_name = {u.username: u for u in User.objects.filter(username__startswith="bench-n-")}
        StaffAssignment.objects.bulk_create(
            [StaffAssignment(user=by_name[f"bench-n-{s.code}-p"], role=Role.PRINCIPAL, school=s) for s in schools]
            + [StaffAssignment(user=by_name[f"bench-n-{s.code}-a"], role=Role.SCHOOL_ADMIN, school=s)
               for s in schools], batch_size=500,
        )
    officer, created = User.objects.get_or_create(username="bench-n-officer", defaults={"display_name": "担当"})
    if created:
        StaffAssignment.objects.create(user=officer, role=Role.BOARD_OFFICER, board=board)
    return board, get_actor(officer)


def _baseline(notice_id: int, school_ids: list[int], user_ids: list[Any]) -> float:
    now = timezone.now()
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO notices_noticerecipient (notice_id, school_id, board_id, delivered_at, reminder_count) "
            "VALUES (%s, %s, NULL, %s, 0)",
            [(notice_id, sid, now) for sid in school_ids],
        )
        cursor.executemany(
            "INSERT INTO notices_notification (id, created_at, updated_at, user_id, kind, title, url, body, "
            "personal, email_state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(uuid.uuid4().hex if connection.vendor == "sqlite" else str(uuid.uuid4()), now, now,
              uid.hex if connection.vendor == "sqlite" else str(uid),
              "notices.notice", "ベンチ", "/notices/1/", "", False, "none") for uid in user_ids],
        )
    return time.perf_counter() - start


def run() -> list[str]:
    from django.core import mail

    from komu.directory.models import Role, School, StaffAssignment
    from komu.notices.models import Notice, NoticeRecipient
    from komu.notices.services import notices as svc
    from komu.testing.tasks import run_queued_tasks

    n = int(os.environ.get("KOMU_BENCH_NOTICE_SCHOOLS", "500"))
    board, actor = _world(n)
    school_ids = list(School.objects.filter(board=board).values_list("pk", flat=True))
    user_ids = list(StaffAssignment.objects.filter(school_id__in=school_ids, role__in=[
        Role.PRINCIPAL, Role.SCHOOL_ADMIN]).values_list("user_id", flat=True))
    lines = []
    timings: list[float] = []
    worker: list[float] = []
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        for i in range(3):
            mail.outbox = []
            start = time.perf_counter()
            notice = svc.notice_send(actor=actor, data=svc.NoticeInput(
                kind=Notice.Kind.JIMU_RENRAKU, title=f"感染症の報告について（{i + 1}）", body="各校で確認してください。",
                ack_required=True, deadline=timezone.localdate(),
            ))
            timings.append(time.perf_counter() - start)
            if NoticeRecipient.objects.filter(notice=notice).count() != len(school_ids):
                raise RuntimeError("bench notice did not reach every school")
            start = time.perf_counter()
            run_queued_tasks()
            worker.append(time.perf_counter() - start)
            if len(mail.outbox) != len(user_ids):
                raise RuntimeError(f"expected {len(user_ids)} e-mails, got {len(mail.outbox)}")
    # The baseline writes into a throwaway notice so the real ones stay intact.
    dummy = Notice.objects.create(kind=Notice.Kind.TSUCHI, title="baseline", sender_board=board,
                                  sent_by=actor.user, sent_at=timezone.now(), audience_label="-")
    base = min(_baseline(dummy.pk, school_ids, user_ids) for _ in range(1))
    best = min(timings)
    lines.append(
        f"notice to {len(school_ids)} schools (service: recipients, audit, {len(user_ids)} notifications, e-mails "
        f"queued): best {best:.2f} s, runs {', '.join(f'{t:.2f}' for t in timings)} s (target ≤ 2 s)  |  baseline "
        f"raw executemany of the same {len(school_ids)} recipient + {len(user_ids)} notification rows: {base:.3f} s  "
        f"|  ratio {base / best:.2f}  |  worker sending the {len(user_ids)} e-mails afterwards: best "
        f"{min(worker):.2f} s"
    )
    return lines
