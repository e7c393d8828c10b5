from __future__ import annotations

import datetime
from typing import Any

from komu.access.scope import Actor, forget_actor, get_actor
from komu.approvals import services
from komu.approvals.models import ApprovalRequest
from komu.directory.models import Term
from komu.testing.world import World


def actor(world: World, name: str) -> Actor:
    user = world.user(name)
    forget_actor(user)
    return get_actor(user)


def term(world: World, name: str = "1学期") -> Term:
    year = world.school_a.years.get()
    return Term.objects.create(school_year=year, number=Term.objects.filter(school_year=year).count() + 1,
                               name=name, start_date=year.start_date,
                               end_date=year.start_date + datetime.timedelta(days=100))


def submit(world: World, subject: Any = None, by: str = "teacher_a") -> ApprovalRequest:
    subject = subject or term(world)
    return services.request_submit(actor=actor(world, by), document_type="test.term", subject=subject,
                                   school=world.school_a)
