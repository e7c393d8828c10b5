from __future__ import annotations

from typing import Any

import pytest

from komu.directory.models import StaffAssignment
from komu.testing.world import World


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def roster_world(world: World) -> World:
    """The shared world with staff names split into family and given name and read in kana, as the Japan
    Profile needs them (the shared personas carry their login ID as display name)."""
    names = {
        "principal_a": ("校長 一郎", "コウチョウ イチロウ"),
        "homeroom_a1": ("担任 花子", "タンニン ハナコ"),
        "teacher_a": ("教員 次郎", "キョウイン ジロウ"),
        "principal_b": ("別校 長", "ベツコウ チョウ"),
    }
    for username, (name, kana) in names.items():
        user = world.user(username)
        user.display_name = name
        user.display_name_kana = kana
        user.save()
    assert StaffAssignment.objects.filter(user__username="homeroom_a1", homeroom_class=world.class_a1).exists()
    return world
