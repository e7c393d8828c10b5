from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from komu.access.scope import Actor, forget_actor, get_actor
from komu.surveys import services
from komu.surveys.models import Survey
from komu.testing.world import World


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def act(world: World, name: str) -> Actor:
    user = world.user(name)
    forget_actor(user)
    return get_actor(user)


def build_survey(world: World, *, template: str = "", title: str = "児童数の照会") -> Survey:
    board = act(world, "board_officer_a")
    survey = services.survey_create(actor=board, title=title, template_code=template)
    if not template:
        services.field_add(actor=board, survey_id=survey.pk, label="児童数", kind="number", required=True,
                           config={"min": 0, "max": 2000, "unit": "人"})
        services.field_add(actor=board, survey_id=survey.pk, label="給食", kind="single", required=True,
                           config={"choices": "自校方式\nセンター方式"})
        services.field_add(actor=board, survey_id=survey.pk, label="行事", kind="multiple",
                           config={"choices": ["運動会", "遠足", "学芸会"]})
        services.field_add(actor=board, survey_id=survey.pk, label="学年別", kind="table",
                           config={"columns": "男子:数値\n女子:数値", "rows": "1年\n2年"})
        services.field_add(actor=board, survey_id=survey.pk, label="備考", kind="text",
                           config={"max_length": "20"})
    return survey


def publish(world: World, survey: Survey, *, days: int = 3, target: str = "all") -> Survey:
    return services.survey_publish(actor=act(world, "board_officer_a"), survey_id=survey.pk, target=target,
                                   deadline=timezone.now() + datetime.timedelta(days=days))


@pytest.fixture
def published(world: World) -> Survey:
    return publish(world, build_survey(world))


class Posted(dict[str, Any]):
    """A QueryDict-like form post for the services (get / getlist)."""

    def getlist(self, key: str) -> list[Any]:
        value = self.get(key, [])
        return value if isinstance(value, list) else [value]


def good_post(**extra: Any) -> Posted:
    data = Posted({"f_q1": "120", "f_q2": "自校方式", "f_q3": ["運動会", "遠足"],
                   "f_q4__0__c1": "10", "f_q4__0__c2": "11", "f_q4__1__c1": "12", "f_q4__1__c2": "13",
                   "f_q5": "なし"})
    data.update(extra)
    return data
