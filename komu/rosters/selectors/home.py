"""The home page's to-dos from the 学齢簿, the rosters and the transfers (counts only, no names)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from komu.access.scope import Actor
from komu.rosters.selectors.rosters import gakureibo_todo, school_inbox_todo_count
from komu.rosters.selectors.transfers import transfer_todo_for
from komu.web.selectors import Task


def home_tasks(*, actor: Actor) -> list[Task]:
    tasks: list[Task] = []
    waiting = school_inbox_todo_count(actor=actor)
    if waiting:
        tasks.append(Task(
            _("入学者名簿が届いています（%(n)d件）") % {"n": waiting},
            _("教育委員会から届いた名簿・変更を確認して受け入れてください。"),
            reverse("rosters:school_inbox"), urgent=True,
        ))
    todo = gakureibo_todo(actor=actor)
    board_url = f"{reverse('rosters:board_entries')}?year={todo.fiscal_year}"
    if todo.undesignated:
        tasks.append(Task(
            _("就学校が未指定の児童 %(n)d名") % {"n": todo.undesignated},
            _("%(year)d年度の新入学者の就学校を指定してください。") % {"year": todo.fiscal_year},
            f"{board_url}&only=undesignated",
        ))
    if todo.needs_review:
        tasks.append(Task(
            _("学齢簿の要確認 %(n)d名") % {"n": todo.needs_review},
            _("外字・ふりがなの欠落などを確認してください。"), f"{board_url}&only=needs_review",
        ))
    if todo.unsent_schools:
        tasks.append(Task(
            _("入学者名簿が未送付の学校 %(n)d校") % {"n": todo.unsent_schools},
            _("通知期限（1月31日）までに各校へ送付してください。"),
            f"{reverse('rosters:board_send')}?year={todo.fiscal_year}",
        ))
    if todo.pending_amendments:
        tasks.append(Task(
            _("学校の反映待ちの変更 %(n)d件") % {"n": todo.pending_amendments},
            _("送付済み名簿への変更を、学校がまだ反映していません。"),
            f"{reverse('rosters:board_status')}?year={todo.fiscal_year}",
        ))
    transfers = transfer_todo_for(actor=actor)
    if transfers.incoming:
        tasks.append(Task(
            _("転入の書類が%(n)d件届いています") % {"n": transfers.incoming},
            _("転学元の学校から届いた学籍・出欠の記録と証明書を確認して受け入れてください。"),
            reverse("rosters:transfer_list"), urgent=True,
        ))
    if transfers.at_board:
        tasks.append(Task(
            _("学校の指定を待っている転入が%(n)d件あります") % {"n": transfers.at_board},
            _("転入学する学校を指定してください（転入学通知）。"),
            reverse("rosters:transfer_list"),
        ))
    return tasks
