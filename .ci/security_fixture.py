"""Prints SESSION=<key>, TOKEN=<api token> and SCHOOL=<id> for the sqlmap run of `.ci/security`: a session of the
demo principal that has passed the second factor, and an API token of the same person (demo database only)."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "komu.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from komu.accounts.models import User  # noqa: E402
from komu.accounts.services import api_token_issue  # noqa: E402
from komu.directory.models import School  # noqa: E402

user = User.objects.get(username="demo-principal")
device = TOTPDevice.objects.filter(user=user).first()
assert device is not None
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = next(b for b in settings.AUTHENTICATION_BACKENDS if "axes" not in b)
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session[DEVICE_ID_SESSION_KEY] = device.persistent_id
session.create()
school = School.objects.order_by("code").first()
assert school is not None
print(f"SESSION={session.session_key}")
print(f"TOKEN={api_token_issue(actor=user, name='sqlmap', expires_at=None).raw}")
print(f"SCHOOL={school.pk}")
