"""The optional tuning an operator sets in komu.env (docs/deployment.md) reaches the code that reads it. Settings
are read once per process, so each case starts a fresh one, as the production units do."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = (
    "import django; django.setup(); from django.conf import settings; "
    "from komu.approvals.selectors import remind_days; "
    "from komu.notices.services import attachments; "
    "print(remind_days(), attachments.MAX_BYTES, getattr(settings, 'KOMU_PDF_FONT_FILES', None))"
)


def _run(**extra: str) -> str:
    tuning = ("KOMU_APPROVAL_REMIND_DAYS", "KOMU_NOTICE_ATTACHMENT_MAX_BYTES", "KOMU_PDF_FONT_FILES")
    env = {k: v for k, v in os.environ.items() if k not in tuning}
    env.update({"DJANGO_SETTINGS_MODULE": "komu.settings", **extra})
    done = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_tuning_from_the_environment_reaches_the_code() -> None:
    out = _run(KOMU_APPROVAL_REMIND_DAYS="5", KOMU_NOTICE_ATTACHMENT_MAX_BYTES="2097152",
               KOMU_PDF_FONT_FILES="/srv/fonts/a.ttf::/srv/fonts/b.ttf")
    assert out == "5 2097152 ['/srv/fonts/a.ttf', '/srv/fonts/b.ttf']"


def test_unset_the_code_keeps_its_defaults() -> None:
    assert _run() == "3 10485760 None"


def test_an_smtp_relay_with_a_login() -> None:
    code = ("import django; django.setup(); from django.core.mail import get_connection; "
            "c = get_connection(); print(c.host, c.port, c.username, c.password, c.use_tls, c.use_ssl, c.timeout)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "komu.settings",
           "KOMU_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "KOMU_EMAIL_HOST": "smtp.example.jp",
           "KOMU_EMAIL_PORT": "587", "KOMU_EMAIL_HOST_USER": "komu", "KOMU_EMAIL_HOST_PASSWORD": "s3cret",
           "KOMU_EMAIL_USE_TLS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "smtp.example.jp 587 komu s3cret True False 30"
