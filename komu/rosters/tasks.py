"""Background work of the rosters app, run by the django-tasks worker (settings.TASKS; `komu db_worker`).

A 学齢簿 file of a large city takes tens of seconds to check and to apply, longer than a web request should wait:
the board officer's screen polls the progress while these run. Arguments are ids only (JSON), and the acting
officer is resolved again inside the task, so a person who lost the role meanwhile cannot apply anything.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django_tasks import task

from komu.access.scope import get_actor
from komu.audit import context
from komu.core.errors import KomuError
from komu.rosters.services import imports


@task()
def validate_gakureibo_import(import_id: str) -> dict[str, Any]:
    """The dry run of one uploaded file (writes only the import's report)."""
    token = context.begin(context.RequestContext(
        request_id=f"task-gakureibo-validate-{import_id[:12]}", channel="task", role="", org="学齢簿の検証"))
    try:
        imp = imports.gakureibo_import_validate(import_id=import_id)
    finally:
        context.end(token)
    return {"status": imp.status, "errors": imp.error_count, "warnings": imp.warning_count}


@task()
def apply_gakureibo_import(import_id: str, user_id: str) -> dict[str, Any]:
    """Apply a validated import as the officer who asked for it (their scope is checked again)."""
    user = get_user_model().objects.get(pk=user_id)
    actor = get_actor(user)
    primary = actor.primary
    token = context.begin(context.RequestContext(
        request_id=f"task-gakureibo-apply-{import_id[:12]}", channel="task",
        role=primary.role if primary else "", org=primary.org_code if primary else ""))
    try:
        imp = imports.gakureibo_import_apply(actor=actor, import_id=import_id)
    except KomuError as error:
        # Already recorded on the import (status failed, message) and in the audit log; the task result says so.
        return {"status": "failed", "message": str(error)}
    finally:
        context.end(token)
    return {"status": imp.status}
