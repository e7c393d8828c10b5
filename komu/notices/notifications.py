"""お知らせ: the one way any app tells people something happened — an in-app notification for each person, and an
e-mail according to their preference (immediately, in a daily digest, or not at all).

Other apps call `notify` inside their own service's transaction. Immediate e-mails are queued as a background task
(`komu.notices.tasks.send_notification_emails`) in that same transaction: with the database queue the task row
commits or rolls back with the notifications (a rolled-back action never mails anyone, a committed one always
will), and the sender's request does not wait for the mail server. The worker (`komu db_worker`) sends them. When the content concerns a person (`personal=True`) the
e-mail carries only the title and the link: the details stay behind the sign-in.

The signature of `notify` is relied on by other apps (surveys, notices): keep it stable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access.scope import Actor, get_in_scope
from komu.audit.services import audit_record
from komu.core.errors import ValidationFailed
from komu.notices.models import Notification, NotificationPreference

EmailMode = NotificationPreference.EmailMode
EmailState = Notification.EmailState

_MAX_TITLE = 200


def _absolute(url: str) -> str:
    base = str(getattr(settings, "KOMU_BASE_URL", "") or "").rstrip("/")
    return f"{base}{url}" if url.startswith("/") else url


def _email_text(notification: Notification) -> str:
    lines = [notification.title, ""]
    if notification.body and not notification.personal:
        lines += [notification.body, ""]
    lines += [_("詳しくは Komu にログインしてご覧ください。"), _absolute(notification.url)]
    return "\n".join(lines)


def notification_emails_send(notification_ids: Iterable[Any]) -> int:
    """Send the e-mails of these notifications that still wait for one (the background task calls this). A
    notification is mailed once: those already sent or turned off are skipped. Returns how many were mailed."""
    notifications = list(
        Notification.objects.filter(pk__in=notification_ids, email_state=EmailState.PENDING).select_related("user")
    )
    messages = []
    for n in notifications:
        address = n.user.email
        if not address:
            continue
        messages.append(EmailMessage(
            subject=_("[Komu] %(title)s") % {"title": n.title}, body=_email_text(n),
            from_email=settings.DEFAULT_FROM_EMAIL, to=[address],
        ))
    if messages:
        get_connection(fail_silently=True).send_messages(messages)
    Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(
        email_state=EmailState.SENT, emailed_at=timezone.now(),
    )
    return len(messages)


def _queue_emails(notification_ids: list[Any]) -> None:
    """Queue the immediate e-mails. The database queue takes the task inside the caller's transaction (an outbox:
    it exists exactly when the notifications do); any other backend gets it only after commit, because it may run
    the task at once, before the notifications are visible."""
    from django_tasks_db import DatabaseBackend

    from komu.notices.tasks import send_notification_emails

    ids = [str(pk) for pk in notification_ids]
    if isinstance(send_notification_emails.get_backend(), DatabaseBackend):
        send_notification_emails.enqueue(notification_ids=ids)
    else:
        transaction.on_commit(lambda: send_notification_emails.enqueue(notification_ids=ids))


def notify(
    *, users: Iterable[Any], title: str, url: str, kind: str, personal: bool = False, body: str = "",
) -> int:
    """Create one in-app notification per distinct active user and arrange their e-mails. Returns how many
    notifications were created."""
    title = " ".join(title.split())[:_MAX_TITLE]
    if not title or not url:
        raise ValueError("通知には件名とリンクが必要です。")
    unique: dict[Any, Any] = {}
    for user in users:
        if user is not None and getattr(user, "is_active", True):
            unique.setdefault(user.pk, user)
    if not unique:
        return 0
    modes = dict(
        NotificationPreference.objects.filter(user_id__in=list(unique)).values_list("user_id", "email_mode")
    )
    rows = []
    for pk in unique:
        mode = modes.get(pk, EmailMode.IMMEDIATE)
        state = EmailState.NONE if mode == EmailMode.OFF else EmailState.PENDING
        rows.append(Notification(user_id=pk, kind=kind, title=title, url=url, body=body, personal=personal,
                                 email_state=state))
    with transaction.atomic():
        Notification.objects.bulk_create(rows, batch_size=500)
        immediate = [n.pk for n in rows if modes.get(n.user_id, EmailMode.IMMEDIATE) == EmailMode.IMMEDIATE]
        if immediate:
            _queue_emails(immediate)
    return len(rows)


def notifications_for(*, actor: Actor, unread_only: bool = False, limit: int = 50) -> list[Notification]:
    """The signed-in person's own notifications, newest first."""
    qs = Notification.objects.filter(user_id=actor.user.pk)
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    return list(qs.order_by("-created_at")[:limit])


def notifications_unread_count(*, actor: Actor) -> int:
    if not getattr(actor.user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user_id=actor.user.pk, read_at__isnull=True).count()


def notification_open(*, actor: Actor, notification_id: Any) -> Notification:
    """Mark one's own notification read and return it (the view then follows its link)."""
    notification = get_in_scope(Notification.objects.filter(user_id=actor.user.pk), pk=notification_id)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, actor: Actor) -> int:
    return Notification.objects.filter(user_id=actor.user.pk, read_at__isnull=True).update(read_at=timezone.now())


def notification_preference_get(*, actor: Actor) -> str:
    pref = NotificationPreference.objects.filter(user_id=actor.user.pk).first()
    return pref.email_mode if pref else EmailMode.IMMEDIATE


@transaction.atomic
def notification_preference_set(*, actor: Actor, email_mode: str) -> NotificationPreference:
    if email_mode not in EmailMode.values:
        raise ValidationFailed(_("メール通知の受け取り方を選んでください。"),
                               errors={"email_mode": [_("メール通知の受け取り方を選んでください。")]})
    pref, _created = NotificationPreference.objects.get_or_create(user_id=actor.user.pk)
    before = pref.email_mode
    pref.email_mode = email_mode
    pref.full_clean()
    pref.save()
    if email_mode == EmailMode.OFF:
        # Nothing still waiting for a digest leaves after the person said "no e-mail".
        Notification.objects.filter(user_id=actor.user.pk, email_state=EmailState.PENDING).update(
            email_state=EmailState.NONE,
        )
    audit_record(actor=actor.user, action="notices.notification_preference.changed", obj=pref,
                 fields=["email_mode"], detail={"from": before, "to": email_mode})
    return pref


def notifications_digest_send() -> int:
    """The daily digest: one e-mail per person who chose it, listing the titles and links of the notifications
    not yet mailed. Returns the number of e-mails sent."""
    digest_users = NotificationPreference.objects.filter(email_mode=EmailMode.DIGEST).values_list("user_id",
                                                                                                  flat=True)
    pending = (
        Notification.objects.filter(email_state=EmailState.PENDING, user_id__in=digest_users)
        .select_related("user").order_by("created_at")
    )
    per_user: dict[Any, list[Notification]] = defaultdict(list)
    for n in pending:
        per_user[n.user_id].append(n)
    messages = []
    for items in per_user.values():
        user = items[0].user
        if not user.email or not user.is_active:
            continue
        lines = [_("Komu の新しいお知らせ（%(count)d 件）") % {"count": len(items)}, ""]
        for n in items:
            lines += [f"・{n.title}", f"  {_absolute(n.url)}"]
        messages.append(EmailMessage(
            subject=_("[Komu] お知らせのまとめ（%(count)d 件）") % {"count": len(items)}, body="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email],
        ))
    if messages:
        get_connection(fail_silently=True).send_messages(messages)
    ids = [n.pk for items in per_user.values() for n in items]
    Notification.objects.filter(pk__in=ids).update(email_state=EmailState.SENT, emailed_at=timezone.now())
    return len(messages)
