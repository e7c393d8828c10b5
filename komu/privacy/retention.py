"""The retention schedule (保存期間表) enforced: each rule of `RetentionRule` removes what has passed its period and
the run records what it removed (a `RetentionRun` row and one audit event per rule that removed anything).

- 出席簿: delegated to the attendance app's own purge (`attendance_purge`), which knows what a register consists of.
- 指導要録 学籍に関する記録: Komu keeps it as the pupil with the 学籍の異動 (EnrollmentEvent); a pupil who left more
  than the period ago is deleted with everything attached.
- 指導要録 指導に関する記録: Komu does not hold it; the run says so (nothing to remove).
- Contacts: a pupil who left more than the period ago loses the emergency contacts; guardians whose every linked
  pupil has so left lose their phone, e-mail and address (names stay: they are part of the 学籍 record).
- Audit log: the events before the cut-off go as one prefix of the chain. The purge records the last removed
  event's MAC as the new anchor in a chained event of its own, so `komu audit verify` still verifies the rest.
  On PostgreSQL (audit log partitioned by month) whole months entirely before the cut-off are dropped instead,
  through komu.ops.partitions.audit_partitions_drop_before, which records the same anchor; SQLite deletes rows.

A dry run counts and removes nothing, and records nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone

from komu.access import roles
from komu.access.scope import Actor, require
from komu.attendance.services import retention as attendance_retention
from komu.audit import guard
from komu.audit.models import AuditEvent
from komu.audit.services import audit_record
from komu.core.errors import ValidationFailed
from komu.ops import partitions
from komu.privacy.models import RetentionRule, RetentionRun
from komu.students.models import LEAVING_KINDS, EmergencyContact, EnrollmentEvent, Guardian, Student

# The action of the purge's own event; komu.audit.services.audit_verify starts the chain from its anchor.
AUDIT_PURGE_ACTION = "audit.retention.purged"


@dataclass
class RuleResult:
    key: str
    label: str
    years: int
    counts: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "years": self.years, "counts": self.counts, "note": self.note}


@dataclass
class RunReport:
    dry_run: bool
    results: list[RuleResult] = field(default_factory=list)
    run_id: int | None = None

    @property
    def total(self) -> int:
        return sum(r.total for r in self.results)


def years_before(today: datetime.date, years: int) -> datetime.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _left_before(cutoff: datetime.date) -> list[Any]:
    """Pupils no longer enrolled whose last leaving (卒業・転学・退学) was before the cut-off."""
    last_leaving = (
        EnrollmentEvent.objects.filter(kind__in=LEAVING_KINDS).values("student_id")
        .annotate(last=Max("date")).filter(last__lt=cutoff).values_list("student_id", flat=True)
    )
    return list(Student.objects.filter(is_active=False, pk__in=last_leaving).values_list("pk", flat=True))


def _attendance(rule: RetentionRule, today: datetime.date, dry_run: bool, actor: Any) -> RuleResult:
    result = RuleResult(rule.key, rule.get_key_display(), rule.years)
    before_year = attendance_retention.latest_purgeable_before_year(today)
    law = attendance_retention.RETENTION_YEARS
    if rule.years > law:
        before_year -= rule.years - law
    elif rule.years < law:
        result.note = f"法定の保存期間（{law}年）より短くはできないため、{law}年で実行しました。"
    report = attendance_retention.attendance_purge(before_year=before_year, dry_run=dry_run, actor_user=actor,
                                                   today=today)
    for entry in report.years:
        for key, n in entry.counts.items():
            result.counts[key] = result.counts.get(key, 0) + n
    result.counts = {k: n for k, n in result.counts.items() if n}
    if report.receipts:
        result.counts["save_receipts"] = report.receipts
    return result


def _gakuseki(rule: RetentionRule, today: datetime.date, dry_run: bool, actor: Any) -> RuleResult:
    result = RuleResult(rule.key, rule.get_key_display(), rule.years)
    ids = _left_before(years_before(today, rule.years))
    # Guardians whose every child goes with this rule go too (they would otherwise stay as orphans).
    orphans = list(
        Guardian.objects.filter(links__student_id__in=ids)
        .exclude(links__student__in=Student.objects.exclude(pk__in=ids)).distinct().values_list("pk", flat=True)
    )
    if dry_run:
        result.counts = {k: n for k, n in {"students": len(ids), "guardians": len(orphans)}.items() if n}
        return result
    removed, kept = 0, 0
    for pk in ids:
        try:
            with transaction.atomic():
                Student.objects.filter(pk=pk).delete()
            removed += 1
        except ProtectedError:
            kept += 1
    if removed:
        result.counts["students"] = removed
    gone_guardians = Guardian.objects.filter(pk__in=orphans, links__isnull=True)
    guardians = gone_guardians.count()
    gone_guardians.delete()
    if guardians:
        result.counts["guardians"] = guardians
    if kept:
        result.note = f"{kept}人は他の記録から参照されているため削除できませんでした。"
    return result


def _guidance(rule: RetentionRule, today: datetime.date, dry_run: bool, actor: Any) -> RuleResult:
    return RuleResult(rule.key, rule.get_key_display(), rule.years,
                      note="Komu は指導に関する記録を保持していません（削除の対象なし）。")


def _contacts(rule: RetentionRule, today: datetime.date, dry_run: bool, actor: Any) -> RuleResult:
    result = RuleResult(rule.key, rule.get_key_display(), rule.years)
    left = _left_before(years_before(today, rule.years))
    contacts = EmergencyContact.objects.filter(student_id__in=left)
    # A guardian keeps their contacts while any of their children has not yet passed the period.
    guardians = (
        Guardian.objects.filter(links__student_id__in=left)
        .exclude(links__student__in=Student.objects.exclude(pk__in=left))
        .exclude(phone="", email="", address="")
        .distinct()
    )
    counts = {"emergency_contacts": contacts.count(), "guardian_contacts": guardians.count()}
    result.counts = {k: n for k, n in counts.items() if n}
    if dry_run:
        return result
    contacts.delete()
    for guardian in guardians:
        guardian.phone = ""
        guardian.email = ""
        guardian.address = ""
        guardian.save(update_fields=["phone", "email", "address", "updated_at"])
    return result


def audit_purge_prefix(*, cutoff: datetime.datetime, dry_run: bool = False, actor: Any = None) -> int:
    """Remove the audit events recorded before `cutoff` (a prefix of the chain: ids before the first event at or
    after the cut-off; the newest event always stays). Records the anchor so that verification continues from
    the first kept event. Returns how many events were (or would be) removed."""
    first_kept = AuditEvent.objects.filter(occurred_at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    if last is None:
        return 0
    through = (first_kept - 1) if first_kept is not None else last - 1
    prefix = AuditEvent.objects.filter(id__lte=through)
    count = prefix.count()
    if dry_run or count == 0:
        return count
    with transaction.atomic():
        anchor = AuditEvent.objects.filter(id=through).values_list("mac", flat=True).get()
        first_id = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
        with guard.purge_window():
            prefix.delete()
        audit_record(
            actor=actor, action=AUDIT_PURGE_ACTION, object_type="audit.auditevent", object_id=str(through),
            detail={"purged_from": first_id, "purged_through": through, "anchor_mac": anchor, "count": count,
                    "before": cutoff.isoformat()},
        )
    return count


def _audit(rule: RetentionRule, today: datetime.date, dry_run: bool, actor: Any) -> RuleResult:
    result = RuleResult(rule.key, rule.get_key_display(), rule.years)
    cutoff = timezone.make_aware(datetime.datetime.combine(years_before(today, rule.years), datetime.time.min))
    if partitions.is_partitioned(partitions.AUDIT_TABLE):
        # PostgreSQL: whole months go by DROP, through the one service that keeps the chain's anchor; the events
        # of the month the cut-off falls in stay until that month is due as a whole.
        dropped = partitions.audit_partitions_drop_before(cutoff=cutoff, actor=actor, dry_run=dry_run)
        if dropped.rows:
            result.counts["audit_events"] = dropped.rows
        if dropped.partitions:
            months = "、".join(d.name.rsplit("_", 1)[-1] for d in dropped.partitions)
            result.note = f"月ごとのパーティション {len(dropped.partitions)} 個を削除{'予定' if dry_run else ''}（{months}）。"
        return result
    count = audit_purge_prefix(cutoff=cutoff, dry_run=dry_run, actor=actor)
    if count:
        result.counts["audit_events"] = count
    return result


_RULES = {
    RetentionRule.Key.ATTENDANCE: _attendance,
    RetentionRule.Key.YOROKU_GAKUSEKI: _gakuseki,
    RetentionRule.Key.YOROKU_GUIDANCE: _guidance,
    RetentionRule.Key.CONTACTS: _contacts,
    RetentionRule.Key.AUDIT: _audit,
}


def retention_run(*, dry_run: bool = False, actor: Any = None, today: datetime.date | None = None) -> RunReport:
    """Apply every enabled rule of the schedule. Each rule runs in its own transaction (a failing rule leaves
    the others' removals in place and is reported); the run is recorded with its counts."""
    today = today or timezone.localdate()
    report = RunReport(dry_run=dry_run)
    # The audit log goes last: its own purge event must not be the only thing recorded after it.
    rules = sorted(RetentionRule.objects.filter(enabled=True),
                   key=lambda r: (r.key == RetentionRule.Key.AUDIT, r.pk))
    for rule in rules:
        apply = _RULES.get(RetentionRule.Key(rule.key))
        if apply is None:
            continue
        try:
            with transaction.atomic():
                result = apply(rule, today, dry_run, actor)
                if not dry_run and result.total and rule.key != RetentionRule.Key.AUDIT:
                    audit_record(actor=actor, action="privacy.retention.purged", object_type="privacy.retentionrule",
                                 object_id=rule.key, detail={"years": rule.years, "counts": result.counts})
        except ValidationFailed as exc:
            result = RuleResult(rule.key, rule.get_key_display(), rule.years, note=str(exc))
        report.results.append(result)
    if not dry_run:
        run = RetentionRun.objects.create(
            dry_run=False, actor_username=actor.get_username() if getattr(actor, "is_authenticated", False) else "system",
            results=[r.as_json() for r in report.results])
        report.run_id = run.pk
    return report


def schedule() -> list[RetentionRule]:
    return list(RetentionRule.objects.all())


def last_runs(limit: int = 10) -> list[RetentionRun]:
    return list(RetentionRun.objects.all()[:limit])


# Legal minimums (学校教育法施行規則 §28): a rule may keep longer, never shorter.
LEGAL_MINIMUM_YEARS = {
    RetentionRule.Key.ATTENDANCE: 5,
    RetentionRule.Key.YOROKU_GAKUSEKI: 20,
    RetentionRule.Key.YOROKU_GUIDANCE: 5,
}


def retention_rule_update(*, actor: Actor, key: str, years: int, enabled: bool) -> RetentionRule:
    """Change one line of the schedule (the operator, for the whole installation); audited."""
    require(actor, roles.SYSTEM_OPERATE)
    minimum = LEGAL_MINIMUM_YEARS.get(RetentionRule.Key(key), 1) if key in RetentionRule.Key.values else 1
    if not 1 <= years <= 100:
        raise ValidationFailed("保存年数は1〜100年で入力してください。", errors={"years": ["1〜100年で入力してください。"]})
    if years < minimum:
        raise ValidationFailed(f"法令上の保存期間（{minimum}年）より短くはできません。",
                               errors={"years": [f"{minimum}年以上にしてください。"]})
    with transaction.atomic():
        rule = RetentionRule.objects.select_for_update().filter(key=key).first()
        if rule is None:
            raise ValidationFailed("保存期間表にない項目です。")
        before = {"years": rule.years, "enabled": rule.enabled}
        rule.years, rule.enabled = years, enabled
        rule.full_clean()
        rule.save()
        audit_record(actor=actor.user, action="privacy.retention.rule_updated", object_type="privacy.retentionrule",
                     object_id=key, fields=["years", "enabled"],
                     detail={"before": before, "after": {"years": years, "enabled": enabled}})
    return rule
