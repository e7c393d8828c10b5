from __future__ import annotations

import base64
import datetime
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import tink
from django.core.management import call_command
from django.core.management.base import CommandError
from django.template import Context, Template
from django.utils import timezone
from tink import json_proto_keyset_format, signature

from komu.approvals import seals, selectors, services
from komu.approvals.models import ApprovalAction, ApprovalRequest, ApprovalSnapshot
from komu.approvals.templatetags.approvals_tags import layout
from komu.approvals.tests.helpers import actor, submit, term
from komu.audit.models import AuditEvent
from komu.directory.models import Role
from komu.security import keys
from komu.testing.world import World


def _approved(world: World, subject: Any = None) -> ApprovalRequest:
    request = submit(world, subject)
    services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)
    services.request_approve(actor=actor(world, "principal_a"), request_id=request.pk)
    request.refresh_from_db()
    return request


def test_an_approval_seals_the_request_hash_and_the_approvers_identity(world: World) -> None:
    request = _approved(world)
    seal = request.actions.get(kind=ApprovalAction.Kind.APPROVE, step=1)
    payload = seal.seal_payload
    principal = world.user("principal_a")
    assert payload["request"] == request.pk and payload["revision"] == 1
    assert payload["document_type"] == "test.term" and payload["subject"] == request.object_id
    assert payload["content_hash"] == request.content_hash == seal.content_hash
    assert payload["step"] == 1 and payload["on_behalf_of"] is None
    assert payload["approver"] == {"id": str(principal.pk), "username": "principal_a",
                                   "display_name": principal.display_name, "role": Role.PRINCIPAL}
    assert seals.signature_valid(payload, seal.signature)


def test_every_seal_of_an_untouched_request_verifies(world: World) -> None:
    request = _approved(world)
    checks = selectors.verify_all(request_id=request.pk)
    assert [(c.step, c.valid) for c in checks] == [(0, True), (1, True)]
    assert "現在の内容と一致" in checks[0].reason


def test_a_tampered_payload_is_reported_invalid(world: World) -> None:
    request = _approved(world)
    seal = request.actions.get(kind=ApprovalAction.Kind.APPROVE, step=1)
    payload = dict(seal.seal_payload)
    payload["approver"] = {**payload["approver"], "display_name": "別人"}
    ApprovalAction.objects.filter(pk=seal.pk).update(seal_payload=payload)
    verdicts = {c.step: c for c in selectors.verify_all(request_id=request.pk)}
    assert verdicts[0].valid
    assert not verdicts[1].valid and "電子署名が一致しません" in verdicts[1].reason


def test_a_tampered_signature_is_reported_invalid(world: World) -> None:
    request = _approved(world)
    seal = request.actions.get(kind=ApprovalAction.Kind.APPROVE, step=0)
    raw = bytearray(base64.b64decode(seal.signature))
    raw[-1] ^= 0x01
    ApprovalAction.objects.filter(pk=seal.pk).update(signature=base64.b64encode(bytes(raw)).decode())
    verdicts = {c.step: c for c in selectors.verify_all(request_id=request.pk)}
    assert not verdicts[0].valid and verdicts[1].valid


def test_a_record_rewritten_to_match_another_approver_is_reported(world: World) -> None:
    request = _approved(world)
    seal = request.actions.get(kind=ApprovalAction.Kind.APPROVE, step=1)
    ApprovalAction.objects.filter(pk=seal.pk).update(actor=world.user("vice_principal_a"))
    [_, second] = selectors.verify_all(request_id=request.pk)
    assert not second.valid and "approver" in second.reason


def test_data_changed_after_approval_without_an_amendment_is_reported(world: World) -> None:
    subject = term(world)
    request = _approved(world, subject)
    type(subject).objects.filter(pk=subject.pk).update(name="改ざん")
    checks = selectors.verify_all(request_id=request.pk)
    assert checks and all(not c.valid for c in checks)
    assert "承認後に内容が変更されています" in checks[0].reason


def test_the_seals_of_a_superseded_revision_still_verify_against_their_snapshot(world: World) -> None:
    subject = term(world)
    first = _approved(world, subject)
    services.request_supersede(user=world.user("teacher_a"), request=first, reason="期間の訂正")
    subject.name = "1学期（訂正）"
    subject.save()
    second = _approved(world, subject)
    assert second.revision == 2 and second.content_hash != first.content_hash
    verdicts = {(c.revision, c.step): c for c in selectors.verify_all()}
    assert all(c.valid for c in verdicts.values())
    assert "第1版の申請時の内容と一致" in verdicts[(1, 0)].reason
    assert "現在の内容と一致" in verdicts[(2, 1)].reason


def test_a_rewritten_snapshot_breaks_the_old_revisions_seals(world: World) -> None:
    subject = term(world)
    first = _approved(world, subject)
    services.request_supersede(user=world.user("teacher_a"), request=first, reason="訂正")
    snapshot = ApprovalSnapshot.objects.get(request=first)
    snapshot.content = snapshot.content.replace("1学期", "2学期")
    snapshot.save()
    checks = selectors.verify_all(request_id=first.pk)
    assert checks and not any(c.valid for c in checks)


def test_verification_from_the_screen_is_audited(world: World) -> None:
    request = _approved(world)
    checks = selectors.request_verify_for(actor=actor(world, "principal_a"), request_id=request.pk)
    assert len(checks) == 2
    event = AuditEvent.objects.get(action="approvals.request.verified")
    assert event.detail == {"seals": 2, "invalid": 0}


def test_the_verify_command_exits_non_zero_on_any_invalid_seal(world: World) -> None:
    subject = term(world)
    request = _approved(world, subject)
    out = StringIO()
    call_command("approvals", "verify", "--school", world.school_a.code, stdout=out)
    assert "[有効]" in out.getvalue() and "無効 0 件" in out.getvalue()
    type(subject).objects.filter(pk=subject.pk).update(name="改ざん")
    out = StringIO()
    with pytest.raises(CommandError, match="無効 2 件"):
        call_command("approvals", "verify", "--request", str(request.pk), stdout=out)
    assert "[無効]" in out.getvalue()


def test_the_verify_command_refuses_an_unknown_school(world: World) -> None:
    with pytest.raises(CommandError, match="学校コード"):
        call_command("approvals", "verify", "--school", "B199999999999")


def test_the_remind_command_reports_what_it_sent(world: World, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    request = submit(world)
    import datetime

    from django.utils import timezone

    ApprovalRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - datetime.timedelta(days=8))
    out = StringIO()
    call_command("approvals", "remind", "--days", "7", stdout=out)
    assert "1 通" in out.getvalue()


def test_a_seal_verifies_outside_komu_with_the_public_keyset_alone(world: World) -> None:
    request = _approved(world)
    seal = request.actions.filter(kind=ApprovalAction.Kind.APPROVE).first()
    assert seal is not None
    out = StringIO()
    call_command("keys", "public", stdout=out)
    published = out.getvalue()
    assert "ASYMMETRIC_PRIVATE" not in published and "Ed25519PublicKey" in published
    handle = json_proto_keyset_format.parse_without_secret(published)
    verifier = handle.primitive(signature.PublicKeyVerify)
    canonical = json.dumps(seal.seal_payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    verifier.verify(base64.b64decode(seal.signature), canonical)
    with pytest.raises(tink.TinkError):
        verifier.verify(base64.b64decode(seal.signature), canonical + b" ")


# --- The key file ------------------------------------------------------------------------------------------------

def _old_key_file(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "keys" / "komu-keys.json"
    keys.create_key_file(path)
    payload = json.loads(path.read_text())
    del payload["seal_signing"]
    path.write_text(json.dumps(payload))
    settings.KOMU_KEY_FILE = path
    keys.reset_cache()
    return path


def test_a_key_file_without_the_seal_key_stops_production_with_the_command_to_run(tmp_path: Path,
                                                                                  settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    path = _old_key_file(tmp_path, settings)
    settings.KOMU_CREATE_KEY_FILE = False
    try:
        with pytest.raises(ImproperlyConfigured, match="komu keys upgrade"):
            keys.get_keyring()
        before = json.loads(path.read_text())
        out = StringIO()
        call_command("keys", "upgrade", stdout=out)
        assert "seal_signing" in out.getvalue()
        after = json.loads(path.read_text())
        # Existing keys are untouched: data encrypted before the upgrade still opens.
        assert {k: after[k] for k in before} == before
        assert keys.get_keyring().seal_valid(b"x", keys.get_keyring().seal_sign(b"x"))
        out = StringIO()
        call_command("keys", "upgrade", stdout=out)
        assert "ありません" in out.getvalue()
    finally:
        keys.reset_cache()


def test_development_adds_the_seal_key_by_itself(tmp_path: Path, settings: Any) -> None:
    path = _old_key_file(tmp_path, settings)
    settings.KOMU_CREATE_KEY_FILE = True
    try:
        assert "seal_signing" in keys.get_keyring().handles
        assert "seal_signing" in json.loads(path.read_text())
        assert path.stat().st_mode & 0o077 == 0
    finally:
        keys.reset_cache()


# --- 印影 --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("display, expected", [
    ("山田 花子", "山田"), ("髙橋　𠮷乃", "髙橋"), ("佐々木", "佐々木"), ("", "principal_a"),
])
def test_the_seal_shows_the_family_name(display: str, expected: str) -> None:
    assert seals.seal_name(display, "principal_a") == expected


def test_seal_columns_read_top_to_bottom_right_to_left() -> None:
    assert seals.seal_columns("山田") == [["山", "田"]]
    assert seals.seal_columns("長谷川") == [["長", "谷", "川"]]
    assert seals.seal_columns("勅使河原") == [["勅", "使"], ["河", "原"]]
    # A variation sequence stays one character.
    assert seals.seal_columns("葛\U000e0100城") == [["葛\U000e0100", "城"]]
    glyphs, size = layout("勅使河原")
    first, second = glyphs[0], glyphs[2]
    assert first.x > second.x and glyphs[0].y < glyphs[1].y and size > 0


def test_the_inkan_svg_escapes_the_name() -> None:
    html = Template("{% load approvals_tags %}{% inkan name %}").render(Context({"name": "<b>&"}))
    assert "<svg" in html and "<b>" not in html and "&lt;" in html


def test_the_remind_command_can_hand_the_work_to_the_task_worker(world: World, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # django-tasks resets its backends when TASKS changes: the task runs in place, as a worker would run it.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    request = submit(world)
    ApprovalRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - datetime.timedelta(days=8))
    out = StringIO()
    call_command("approvals", "remind", "--enqueue", stdout=out)
    assert "バックグラウンド" in out.getvalue()
    assert request.actions.filter(kind=ApprovalAction.Kind.REMIND).exists()
