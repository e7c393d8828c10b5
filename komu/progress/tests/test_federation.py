from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from komu.audit.models import AuditEvent
from komu.core.errors import ValidationFailed
from komu.progress import services
from komu.progress.models import FederationSnapshot, IndicatorValue, Rollup
from komu.progress.tests.conftest import MemberKey, act, member_payload
from komu.testing.world import World

pytestmark = pytest.mark.django_db
OCT = datetime.date(2026, 10, 1)


@pytest.fixture
def member(world: World) -> MemberKey:
    key = MemberKey()
    services.federation_member_register(actor=act(world, "operator"), code="renkei-city", name="連携市",
                                        public_keyset=key.public)
    return key


def test_a_signed_snapshot_is_stored_and_rolled_up_as_if_local(member: MemberKey) -> None:
    result = services.snapshot_receive(body=member.envelope(member_payload()))
    assert result == {"status": "stored", "sequence": 1, "schools": 12}
    nation = Rollup.objects.get(level="nation", month=OCT, indicator="comm_digital")
    assert (nation.numerator, nation.denominator, nation.schools) == (9 * 12, 12 * 12, 12)
    assert Rollup.objects.filter(level="prefecture", key="27", month=OCT).exists()
    assert AuditEvent.objects.filter(action="progress.snapshot.received").exists()


def test_the_same_snapshot_twice_is_stored_once(member: MemberKey) -> None:
    body = member.envelope(member_payload())
    services.snapshot_receive(body=body)
    assert services.snapshot_receive(body=body)["status"] == "duplicate"
    assert FederationSnapshot.objects.count() == 1
    assert IndicatorValue.objects.filter(source="renkei-city").count() == 24


def test_a_tampered_snapshot_is_rejected(member: MemberKey) -> None:
    with pytest.raises(services.SnapshotRejected) as exc:
        services.snapshot_receive(body=member.envelope(member_payload(), tamper=True))
    assert exc.value.status == 403
    assert not IndicatorValue.objects.exists()


def test_an_unknown_key_is_rejected(world: World) -> None:
    stranger = MemberKey()
    with pytest.raises(services.SnapshotRejected) as exc:
        services.snapshot_receive(body=stranger.envelope(member_payload()))
    assert exc.value.status == 403


def test_an_older_sequence_is_a_replay(member: MemberKey) -> None:
    services.snapshot_receive(body=member.envelope(member_payload(sequence=5)))
    with pytest.raises(services.SnapshotRejected) as exc:
        services.snapshot_receive(body=member.envelope(member_payload(sequence=4, nonce="another-nonce")))
    assert exc.value.status == 409


def test_a_snapshot_outside_the_time_window_is_rejected(member: MemberKey) -> None:
    old = timezone.now() - datetime.timedelta(hours=1)
    with pytest.raises(services.SnapshotRejected) as exc:
        services.snapshot_receive(body=member.envelope(member_payload(created=old)))
    assert exc.value.status == 409


def test_a_member_cannot_overwrite_the_hubs_own_schools(world: World, member: MemberKey) -> None:
    payload = member_payload(schools=1)
    payload["schools"][0]["code"] = world.school_a.code
    with pytest.raises(services.SnapshotRejected) as exc:
        services.snapshot_receive(body=member.envelope(payload))
    assert exc.value.status == 409


def test_a_malformed_body_is_refused() -> None:
    with pytest.raises(services.SnapshotRejected) as exc:
        services.snapshot_receive(body=b"not json")
    assert exc.value.status == 400


def test_registering_refuses_a_bad_key_or_a_duplicate(world: World, member: MemberKey) -> None:
    with pytest.raises(ValidationFailed):
        services.federation_member_register(actor=None, code="other", name="他市", public_keyset="{}")
    with pytest.raises(ValidationFailed):
        services.federation_member_register(actor=None, code="other", name="他市", public_keyset=member.public)


def test_the_own_snapshot_is_signed_by_this_deployment(world: World) -> None:
    services.indicators_measure(actor=None, month=timezone.localdate().replace(day=1))
    payload = services.snapshot_build(month=timezone.localdate(), sequence=1)
    assert {s["code"] for s in payload["schools"]} == {world.school_a.code, world.school_a2.code,
                                                       world.school_b.code}
    envelope = json.loads(services.snapshot_envelope(payload))
    assert envelope["key_id"] == services.key_fingerprint(services.own_public_keyset())
