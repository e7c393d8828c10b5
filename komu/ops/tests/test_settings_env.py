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
