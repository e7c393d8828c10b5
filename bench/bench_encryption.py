"""Cost of encrypted personal fields: pupils inserted and read through the ORM with Tink AES-GCM on 8 fields and
2 blind indexes, against the same rows inserted with the database driver directly, in plaintext."""

from __future__ import annotations

import datetime
import uuid

from django.db import connection, transaction

from bench.timing import best_of, line

N = 5000


def _world() -> object:
    from komu.directory.models import Board, Prefecture, School

    prefecture = Prefecture.objects.get(code="13")
    board, _ = Board.objects.get_or_create(code="139901", defaults={
        "name": "ベンチ市教育委員会", "kind": Board.Kind.MUNICIPAL, "prefecture": prefecture})
    from komu.core.codes import make_school_code

    school, _ = School.objects.get_or_create(code=make_school_code("B1", "13", "2", "0999001"), defaults={
        "name": "ベンチ小学校", "school_type": "B1", "board": board, "prefecture": prefecture})
    return school


def run() -> list[str]:
    from komu.students.models import Student

    school = _world()
    rows = [
        dict(family_name="髙橋", given_name=f"太郎{i}", family_name_kana="タカハシ", given_name_kana="タロウ",
             birth_date=datetime.date(2015, 4, 2) + datetime.timedelta(days=i % 365),
             address=f"架空県ベンチ市一丁目{i}番", health_note="")
        for i in range(N)
    ]

    def orm_insert() -> None:
        with transaction.atomic():
            Student.objects.bulk_create([Student(school=school, **r) for r in rows], batch_size=1000)

    def raw_insert() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bench_plain (id text, school_id bigint, "
                           "family_name text, given_name text, family_name_kana text, given_name_kana text, "
                           "birth_date text, address text, health_note text)")
            cursor.executemany(
                "INSERT INTO bench_plain VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(str(uuid.uuid4()), school.pk, r["family_name"], r["given_name"], r["family_name_kana"],  # type: ignore[attr-defined]
                  r["given_name_kana"], r["birth_date"].isoformat(), r["address"], r["health_note"]) for r in rows],
            )

    def orm_read() -> None:
        for s in Student.objects.filter(school=school)[:N]:
            _ = (s.family_name, s.given_name, s.family_name_kana, s.given_name_kana, s.birth_date, s.address)

    def raw_read() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT family_name, given_name, family_name_kana, given_name_kana, birth_date, address "
                           "FROM bench_plain LIMIT %s", [N])
            cursor.fetchall()

    t_orm = best_of(3, orm_insert)
    t_raw = best_of(3, raw_insert)
    t_read = best_of(3, orm_read)
    t_raw_read = best_of(3, raw_read)
    return [
        line("encrypted pupil insert (ORM bulk_create, 8 encrypted fields + 2 blind indexes)", N, t_orm,
             "plaintext executemany via the driver", t_raw),
        line("encrypted pupil read + decrypt 6 fields", N, t_read, "plaintext SELECT via the driver", t_raw_read),
    ]
