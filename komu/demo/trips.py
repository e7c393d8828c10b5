"""Demo data for 校外活動 (komu.trips): emergency contacts (祖父母・勤務先) for the pupils of demo-homeroom's class,
so that a chaperone's phone page and the printed 緊急連絡先一覧 show what a real class would. Invented names and
numbers (domain.md §6: no real data in a demo). Called once by komu/demo/builder.py (`build`)."""

from __future__ import annotations

import random

from komu.directory.models import HomeroomClass
from komu.students.models import ClassMembership, EmergencyContact

_GIVEN = ("和子", "正男", "幸子", "茂", "節子", "勝", "京子", "清")
_RELATIONSHIPS = ("祖母", "祖父", "伯母", "叔父")


def build(*, klass: HomeroomClass, seed: int) -> int:
    """One or two emergency contacts per pupil of the class; the number written."""
    rng = random.Random(seed * 7 + 3)
    contacts = []
    number = 0
    for membership in ClassMembership.objects.filter(homeroom_class=klass).select_related("student"):
        student = membership.student
        for priority in range(1, rng.choice((2, 3))):
            number += 1
            contacts.append(EmergencyContact(
                student=student, priority=priority,
                name=f"{student.family_name} {rng.choice(_GIVEN)}", relationship=rng.choice(_RELATIONSHIPS),
                phone=f"048-021-{7000 + number:04d}", note="",
            ))
    for contact in contacts:
        contact.full_clean()
        contact.save()
    return len(contacts)
