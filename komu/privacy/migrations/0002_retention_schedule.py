"""The default retention schedule (保存期間表). A board edits the periods in the table; this only seeds it."""

from typing import Any

from django.db import migrations

RULES = [
    ("attendance_registers", 5, "学年度の終了後5年（学校教育法施行規則 第28条第2項）。期間を過ぎた出席簿を削除する。"),
    ("yoroku_gakuseki", 20, "卒業・転学等の後20年（学校教育法施行規則 第28条第2項）。"),
    ("yoroku_guidance", 5, "卒業・転学等の後5年（学校教育法施行規則 第28条第2項）。"),
    ("contacts_after_leaving", 1, "児童生徒の卒業・転学・退学の後1年。緊急連絡先と保護者の電話番号・メール・住所を削除する。"),
    ("audit_log", 10, "記録の日から10年（教育委員会の方針により変更可）。期限を過ぎた先頭部分を削除し、連鎖の起点を記録する。"),
]


def seed(apps: Any, schema_editor: Any) -> None:
    rule = apps.get_model("privacy", "RetentionRule")
    for key, years, basis in RULES:
        rule.objects.get_or_create(key=key, defaults={"years": years, "basis": basis})


def unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("privacy", "RetentionRule").objects.filter(key__in=[r[0] for r in RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("privacy", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
