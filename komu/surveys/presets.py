"""The ready-made survey templates (ひな形) a board starts from: data, offered in the builder and listed by
`komu surveys templates`. Every figure a school's data holds is bound to its source (komu.surveys.sources), so
the school confirms instead of retyping.
"""

from __future__ import annotations

from dataclasses import dataclass

from komu.surveys.fields import FieldSpec


@dataclass(frozen=True)
class Preset:
    code: str
    title: str
    description: str
    period: str  # "week" or "month": the 対象期間 proposed when the survey is made from it
    fields: tuple[FieldSpec, ...]


def _count(key: str, label: str, source: str, help_text: str = "") -> FieldSpec:
    return FieldSpec(key=key, label=label, kind="number", required=True, help_text=help_text,
                     config={"min": 0, "max": 100000, "unit": "人"}, source=source)


_WEEKLY_DISEASES = (
    ("flu", "インフルエンザ", "influenza"),
    ("covid", "新型コロナウイルス感染症", "covid19"),
    ("gastro", "感染性胃腸炎", "gastroenteritis"),
    ("pertussis", "百日咳", "pertussis"),
    ("varicella", "水痘", "varicella"),
    ("mumps", "流行性耳下腺炎", "mumps"),
    ("pcf", "咽頭結膜熱", "pcf"),
    ("other_disease", "その他の感染症", "other"),
)

INFECTIOUS_WEEKLY = Preset(
    code="infectious_weekly",
    title="感染症の発生状況（週報）",
    description="対象期間に出席停止とした児童生徒数（感染症別）、学級閉鎖、臨時休業の状況を報告してください。"
                "出欠の記録から自動入力されます。確認のうえ、違いがあれば修正してください。",
    period="week",
    fields=(
        *(_count(key, f"出席停止（{label}）", f"suspension:{code}") for key, label, code in _WEEKLY_DISEASES),
        _count("suspension_total", "出席停止・合計（実人数）", "suspension:total",
               "同じ児童生徒が複数の感染症で出席停止となった場合は1人と数えます。"),
        FieldSpec(key="closure_classes", label="学級閉鎖の学級数", kind="number", required=True,
                  config={"min": 0, "max": 1000, "unit": "学級"}, source="closures"),
        FieldSpec(key="closure_days", label="学級閉鎖の延べ日数", kind="number", required=True,
                  config={"min": 0, "max": 10000, "unit": "日"}, source="closure_days"),
        FieldSpec(key="school_closure", label="臨時休業（学年閉鎖・学校閉鎖）", kind="single", required=True,
                  config={"choices": ["なし", "学年閉鎖", "学校閉鎖"]}),
        FieldSpec(key="note", label="備考", kind="text",
                  help_text="流行の状況や学校の対応など、伝えたいことがあれば書いてください。個人名は書かないでください。",
                  config={"max_length": 400}),
    ),
)

MONTHLY_ATTENDANCE = Preset(
    code="monthly_attendance",
    title="月例 出欠状況",
    description="対象月末の在籍者数（学年別）、欠席者数と延べ欠席日数、長期欠席者数（理由別）を報告してください。"
                "学籍と出欠の記録から自動入力されます。",
    period="month",
    fields=(
        *(_count(f"enrolment_g{n}", f"在籍者数（{n}年）", f"enrolment:g{n}") for n in range(1, 7)),
        _count("enrolment_total", "在籍者数・合計", "enrolment:total"),
        _count("absent_pupils", "欠席した児童生徒数", "absent_pupils", "対象期間に1日以上欠席した実人数です。"),
        FieldSpec(key="absence_days", label="欠席の延べ日数", kind="number", required=True,
                  config={"min": 0, "max": 1000000, "unit": "日"}, source="absence_days"),
        _count("long_illness", "長期欠席者数（病気）", "long_absence:illness"),
        _count("long_economic", "長期欠席者数（経済的理由）", "long_absence:economic"),
        _count("long_futoko", "長期欠席者数（不登校）", "long_absence:futoko"),
        _count("long_other", "長期欠席者数（その他）", "long_absence:other"),
        _count("long_total", "長期欠席者数・合計", "long_absence:total"),
        FieldSpec(key="note", label="備考", kind="text", config={"max_length": 400},
                  help_text="個人名は書かないでください。"),
    ),
)

PRESETS: dict[str, Preset] = {p.code: p for p in (INFECTIOUS_WEEKLY, MONTHLY_ATTENDANCE)}
