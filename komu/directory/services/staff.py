"""Staff assignments (配置): who holds which role where. Every grant of access starts and ends here, audited.

Who may grant what is `selectors.may_grant`; an actor never changes their own assignments, so no one can widen
their own access and the last operator cannot lock everyone out by accident.
"""

from __future__ import annotations

import datetime
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import audit_record
from komu.core.errors import PermissionDeniedError
from komu.directory import selectors
from komu.directory.models import Board, HomeroomClass, Prefecture, Role, School, StaffAssignment
from komu.directory.services._common import Errors, add_error, audit_scope, model_errors, raise_if, user_of

ASSIGNMENT_FIELDS = (
    "user",
    "role",
    "prefecture",
    "board",
    "school",
    "homeroom_class",
    "start_date",
    "end_date",
)


def normalize_login_id(login_id: str) -> str:
    """ログインID as typed on any keyboard: full-width letters and digits fold to ASCII (ｔａｎａｋａ → tanaka)."""
    return unicodedata.normalize("NFKC", login_id).strip()


def find_staff_user(login_id: str) -> Any:
    """The active staff user with this ログインID, or None. Guardians never hold a staff role."""
    user_model = get_user_model()
    return user_model.objects.filter(
        username=normalize_login_id(login_id), kind=user_model.Kind.STAFF, is_active=True
    ).first()


def is_current(assignment: StaffAssignment, today: datetime.date | None = None) -> bool:
    """In force today or later (not yet ended)."""
    today = today or timezone.localdate()
    return assignment.end_date is None or assignment.end_date >= today


def assignment_audit_detail(assignment: StaffAssignment) -> dict[str, Any]:
    return {
        "user_id": str(assignment.user_id),
        "role": assignment.role,
        "org": assignment.organisation_code,
        "class_id": assignment.homeroom_class_id,
    }


@dataclass(frozen=True)
class StaffInput:
    login_id: str
    role: str
    school_id: int | None = None
    board_id: int | None = None
    prefecture_id: str | None = None
    homeroom_class_id: int | None = None
    start_date: datetime.date | None = None
    end_date: datetime.date | None = None


def _organisation(actor: Actor, data: StaffInput) -> tuple[School | None, Board | None, HomeroomClass | None]:
    """Resolve the place of the assignment within the actor's staff scope (404 outside it)."""
    school = board = klass = None
    if data.school_id is not None:
        school = selectors.school_get_for(
            actor=actor, school_id=data.school_id, capability=roles.STAFF_MANAGE
        )
    if data.board_id is not None:
        board = scope.get_in_scope(selectors.manageable_boards(actor, roles.STAFF_MANAGE), pk=data.board_id)
    if data.homeroom_class_id is not None:
        klass = scope.get_in_scope(
            HomeroomClass.objects.filter(school_year__school=school).select_related("school_year"),
            pk=data.homeroom_class_id,
        )
    return school, board, klass


@transaction.atomic
def staff_assignment_create(*, actor: Actor, data: StaffInput) -> StaffAssignment:
    """Give an existing staff user a role at a school (a homeroom teacher also a class), a board or nationwide.

    An assignment that ended earlier with the same role and place is reopened rather than duplicated.
    """
    scope.require(actor, roles.STAFF_MANAGE)
    errors: Errors = {}
    if data.role not in Role.values or data.role == Role.GUARDIAN:
        raise_if({"role": [_("役割を選んでください。")]})
    school, board, klass = _organisation(actor, data)
    if not selectors.may_grant(actor, data.role, school=school, board=board):
        raise PermissionDeniedError(_("この役割を割り当てる権限がありません。"))
    user = find_staff_user(data.login_id)
    if user is None:
        add_error(
            errors,
            "login_id",
            _(
                "ログインID「%(login_id)s」の教職員が見つかりません。"
                "ログインIDを確認するか、先に利用者を登録してください。"
            )
            % {"login_id": normalize_login_id(data.login_id)},
        )
    elif actor.user is not None and user.pk == getattr(actor.user, "pk", None):
        add_error(errors, "login_id", _("自分自身の配置は変更できません。ほかの管理者に依頼してください。"))
    prefecture = None
    if data.prefecture_id:
        prefecture = Prefecture.objects.filter(code=data.prefecture_id).first()
        if prefecture is None:
            add_error(errors, "prefecture", _("都道府県を選んでください。"))
    raise_if(errors)
    existing = StaffAssignment.objects.filter(
        user=user, role=data.role, board=board, school=school, homeroom_class=klass, prefecture=prefecture
    ).first()
    if existing is not None and is_current(existing):
        raise_if(
            {
                "login_id": [
                    _("%(user)s はすでに「%(role)s」として配置されています。")
                    % {"user": user.username, "role": existing.get_role_display()}
                ]
            }
        )
    assignment = existing or StaffAssignment(user=user, role=data.role)
    assignment.board, assignment.school, assignment.homeroom_class = board, school, klass
    assignment.prefecture = prefecture
    assignment.start_date = data.start_date or timezone.localdate()
    assignment.end_date = data.end_date
    errors = model_errors(
        assignment, exclude={"user", "board", "school", "homeroom_class", "prefecture"}, check_unique=False
    )
    raise_if(errors)
    assignment.save()
    audit_record(
        actor=user_of(actor),
        action="directory.staff.assigned",
        obj=assignment,
        fields=[f for f in ASSIGNMENT_FIELDS if getattr(assignment, f) is not None],
        detail=assignment_audit_detail(assignment),
        scope=audit_scope(
            school_id=school.pk if school else None,
            board_id=school.board_id if school else board.pk if board else None,
        ),
    )
    return assignment


@transaction.atomic
def staff_assignment_end(
    *, actor: Actor, assignment_id: int, end_date: datetime.date | None = None
) -> StaffAssignment:
    """End an assignment: ``end_date`` is its last day (today unless given); the next day the role is gone."""
    assignment = selectors.staff_assignment_get_for(actor=actor, assignment_id=assignment_id)
    today = timezone.localdate()
    if not is_current(assignment, today):
        raise_if({"end_date": [_("この配置はすでに終了しています。")]})
    end = end_date or today
    if end < today - datetime.timedelta(days=1):
        raise_if({"end_date": [_("終了日は昨日以降の日付にしてください（過去の配置を書き換えないため）。")]})
    if assignment.start_date and end < assignment.start_date:
        raise_if(
            {
                "end_date": [
                    _("終了日は開始日（%(start)s）以降にしてください。") % {"start": assignment.start_date}
                ]
            }
        )
    assignment.end_date = end
    raise_if(
        model_errors(
            assignment,
            exclude={"user", "board", "school", "homeroom_class", "prefecture"},
            check_unique=False,
        )
    )
    assignment.save(update_fields=["end_date", "updated_at"])
    school = assignment.school
    audit_record(
        actor=user_of(actor),
        action="directory.staff.ended",
        obj=assignment,
        fields=["end_date"],
        detail={**assignment_audit_detail(assignment), "end_date": end.isoformat()},
        scope=audit_scope(
            school_id=school.pk if school else None,
            board_id=school.board_id if school else assignment.board_id,
        ),
    )
    return assignment
