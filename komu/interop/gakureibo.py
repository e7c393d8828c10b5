"""学齢簿 (school-age register) import: next year's entrants as a board of education sends them.

The board prepares the 学齢簿 of next year's entrants by 31 October and, by 31 January, notifies each
principal of the children designated to the school (学校教育法施行令 §2, §5, §7; docs/domain.md §2). This
module parses such an extract into :class:`EntrantRow` values. It is pure: no ORM, no database; the owning
app shows the dry-run table and applies the rows through its services.

All-or-nothing: any error in :attr:`GakureiboParse.errors` makes the whole file unusable (``rows`` is then
empty); :attr:`GakureiboParse.warnings` are shown for review and do not block the import.

Komu layout (``layout="komu"``)
-------------------------------
One heading row, then one child per row, CSV (UTF-8 with or without BOM, or CP932) or XLSX. Headings are
compared loosely (full-width, spaces ignored). Columns may be in any order; optional columns may be left out.

============================ ======== ============================================================
見出し                         必須      内容
============================ ======== ============================================================
個人番号                       必須      教育委員会の個人識別番号（宛名番号など）。ファイル内で一意。英数字。
氏名（姓）                     必須      入力どおりに保存（正規化しない）。外字は要確認の警告。
氏名（名）                              同上
ふりがな（姓）/ふりがな（名）             カタカナに正規化（ひらがな・半角可）。空欄は警告。
性別                                   男 / 女 / 未設定（空欄は未設定）
生年月日                       必須      2019-04-02、2019/4/2、平成31年4月2日、H31.4.2 など
住所 / 郵便番号
保護者氏名（姓）/保護者氏名（名）         入力どおり
保護者ふりがな（姓）/（名）              カタカナに正規化
続柄                                   父、母、祖母 など（自由記述）
保護者電話番号                          数字とハイフン
保護者メールアドレス
保護者住所
就学予定校コード                         学校コード（13桁、チェックディジット検査）。空欄可。
学年                                   0 または 1（どちらも新1年生）。空欄は新1年生。
学級種別                               普通 / 特別支援（空欄は普通）
区域外就学                             有 / 無（空欄は無）
入学予定日                             日付。空欄可。
備考                                   改行可
============================ ======== ============================================================

APPLIC layout (``layout="applic"``)
-----------------------------------
APPLIC 学齢簿ファイル V2.2 is the municipal interchange layout. domain.md §2 confirms only its content: a
15-character person id, school code, grade (0 for entrants), class type 普通/特別支援, guardian id and
relationship. The heading names below, the single full-name columns and the sex codes are **(unconfirmed)**
against the real specification; they are data (:data:`APPLIC_HEADERS`, :data:`APPLIC_SEX_CODES`,
:data:`APPLIC_PERSON_ID_LENGTH`) so a correction does not touch the parsing code. Columns of the real file
that Komu does not use are ignored.

``layout="auto"`` picks the layout whose headings the file matches.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from komu.core.codes import validate_school_code
from komu.core.tabular import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CELL_LENGTH,
    DEFAULT_MAX_ROWS,
    Column,
    ColumnKind,
    Row,
    TableIssue,
    TableResult,
    TableSchema,
    read_table,
)
from komu.core.text import (
    NameCheck,
    TextError,
    check_name,
    normalize_digits,
    normalize_kana,
    normalize_phone,
    normalize_postal_code,
)

__all__ = [
    "APPLIC_HEADERS",
    "APPLIC_PERSON_ID_LENGTH",
    "APPLIC_SCHEMA",
    "APPLIC_SEX_CODES",
    "KOMU_SCHEMA",
    "EntrantRow",
    "GakureiboIssue",
    "GakureiboParse",
    "Layout",
    "Sex",
    "entrant_birth_range",
    "parse_gakureibo",
]

Layout = Literal["komu", "applic", "auto"]
Sex = Literal["male", "female", "unspecified"]


@dataclass(frozen=True, slots=True)
class GakureiboIssue:
    """One error or warning. ``line``/``column``/``value`` are None when they do not apply."""

    file: str
    line: int | None
    column: str | None
    value: str | None
    message: str  # Japanese, says what to do
    code: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" {self.line}行目"
        if self.column is not None:
            where += f"「{self.column}」"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class EntrantRow:
    """One child from the extract. Names are exactly as entered; kana are canonical katakana ("" if blank)."""

    line: int
    person_id: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    sex: Sex
    birth_date: dt.date
    address: str
    postal_code: str
    guardian_id: str
    guardian_family_name: str
    guardian_given_name: str
    guardian_family_name_kana: str
    guardian_given_name_kana: str
    guardian_relationship: str
    guardian_phone: str
    guardian_email: str
    guardian_address: str
    school_code: str  # "" when the board left it blank
    grade: int  # always 1: entrants to the first grade
    special_needs: bool  # 学級種別 特別支援
    out_of_district: bool  # 区域外就学
    entry_date: dt.date | None
    note: str
    needs_review: bool = False  # a warning names this row


@dataclass(slots=True)
class GakureiboParse:
    """The result of :func:`parse_gakureibo`. Import only when :attr:`ok`."""

    layout: Literal["komu", "applic"]
    rows: list[EntrantRow]
    errors: list[GakureiboIssue]
    warnings: list[GakureiboIssue] = field(default_factory=list)
    format: Literal["csv", "xlsx"] | None = None
    encoding: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


# --- cleaning functions used by the schemas ------------------------

_PERSON_ID: Final = re.compile(r"[0-9A-Za-z]+")


def _clean_person_id(value: str) -> str:
    # NFKC first so ０１２ and 012 are the same person (and collide in the duplicate check).
    person_id = normalize_digits(value, "個人番号")
    if not _PERSON_ID.fullmatch(person_id):
        raise TextError(
            f"個人番号「{value}」に英数字以外の文字があります。教育委員会の個人番号をそのまま入力してください。",
            code="person_id_format",
        )
    return person_id


@functools.lru_cache(maxsize=4096)
def _clean_school_code(value: str) -> str:
    # A board has a few dozen schools and every row names one: check each distinct code once.
    return validate_school_code(value).code


_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _clean_email(value: str) -> str:
    email = unicodedata.normalize("NFKC", value).strip()
    if not _EMAIL.fullmatch(email):
        raise TextError(
            f"メールアドレス「{value}」の形式が正しくありません（例: name@example.jp）。", code="email_format"
        )
    return email


def _kana(field_name: str) -> Callable[[str], str]:
    label = f"「{field_name}」"

    # Readings repeat a great deal in a 学齢簿 (family names, common given names): remembering the last few
    # thousand results keeps a large file fast. A rejected value raises again each time (errors are not cached).
    @functools.lru_cache(maxsize=8192)
    def clean(value: str) -> str:
        return normalize_kana(value, field=label)

    return clean


def _phone(value: str) -> str:
    return normalize_phone(value, "「保護者電話番号」")


def _postal(value: str) -> str:
    return normalize_postal_code(value, "「郵便番号」")


def _strip(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


# --- Komu layout ---------------------------------------------------

KOMU_SCHEMA: Final = TableSchema(
    columns=(
        Column("個人番号", "person_id", required=True, unique=True, max_length=30, clean=_clean_person_id),
        Column("氏名（姓）", "family_name", required=True, aliases=("姓",)),
        Column("氏名（名）", "given_name", aliases=("名",)),
        Column(
            "ふりがな（姓）", "family_name_kana", aliases=("フリガナ（姓）",), clean=_kana("ふりがな（姓）")
        ),
        Column(
            "ふりがな（名）", "given_name_kana", aliases=("フリガナ（名）",), clean=_kana("ふりがな（名）")
        ),
        Column("性別", "sex", clean=_strip),
        Column("生年月日", "birth_date", required=True, kind="date"),
        Column("住所", "address"),
        Column("郵便番号", "postal_code", clean=_postal),
        Column("保護者氏名（姓）", "guardian_family_name"),
        Column("保護者氏名（名）", "guardian_given_name"),
        Column("保護者ふりがな（姓）", "guardian_family_name_kana", clean=_kana("保護者ふりがな（姓）")),
        Column("保護者ふりがな（名）", "guardian_given_name_kana", clean=_kana("保護者ふりがな（名）")),
        Column("続柄", "guardian_relationship"),
        Column("保護者電話番号", "guardian_phone", clean=_phone),
        Column("保護者メールアドレス", "guardian_email", max_length=254, clean=_clean_email),
        Column("保護者住所", "guardian_address"),
        Column("就学予定校コード", "school_code", aliases=("学校コード",), clean=_clean_school_code),
        Column("学年", "grade", kind="integer"),
        Column("学級種別", "class_type", clean=_strip),
        Column("区域外就学", "out_of_district", clean=_strip),
        Column("入学予定日", "entry_date", kind="date"),
        Column("備考", "note", multiline=True, max_length=1000),
    )
)

# --- APPLIC 学齢簿ファイル V2.2 (headings unconfirmed) --------------------

APPLIC_PERSON_ID_LENGTH: Final = 15  # confirmed by domain.md §2

# key → (heading, aliases). Every heading here is (unconfirmed) against the V2.2 specification.
APPLIC_HEADERS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "person_id": ("宛名番号", ("個人識別番号",)),
    "full_name": ("氏名", ()),
    "full_name_kana": ("氏名カナ", ("カナ氏名",)),
    "sex": ("性別コード", ("性別",)),
    "birth_date": ("生年月日", ()),
    "postal_code": ("郵便番号", ()),
    "address": ("住所", ()),
    "school_code": ("学校コード", ("就学校コード",)),
    "grade": ("学年", ()),
    "class_type": ("学級区分", ("学級種別",)),
    "guardian_id": ("保護者宛名番号", ()),
    "guardian_full_name": ("保護者氏名", ()),
    "guardian_full_name_kana": ("保護者氏名カナ", ("保護者カナ氏名",)),
    "guardian_relationship": ("続柄", ("保護者続柄",)),
    "entry_date": ("入学年月日", ("入学予定日",)),
    "out_of_district": ("区域外就学区分", ("区域外就学",)),
}

# (unconfirmed) Municipal systems commonly use 1 = 男, 2 = 女; the Japanese words are accepted as well.
APPLIC_SEX_CODES: Final[Mapping[str, Sex]] = {
    "1": "male",
    "2": "female",
    "男": "male",
    "女": "female",
    "9": "unspecified",
    "未設定": "unspecified",
}


def _applic_column(
    key: str,
    *,
    required: bool = False,
    unique: bool = False,
    kind: ColumnKind = "text",
    max_length: int = DEFAULT_MAX_CELL_LENGTH,
    clean: Callable[[str], str] | None = None,
) -> Column:
    heading, aliases = APPLIC_HEADERS[key]
    return Column(
        heading,
        key,
        required=required,
        aliases=aliases,
        kind=kind,
        max_length=max_length,
        unique=unique,
        clean=clean,
    )


APPLIC_SCHEMA: Final = TableSchema(
    columns=(
        _applic_column("person_id", required=True, unique=True, max_length=30, clean=_clean_person_id),
        _applic_column("full_name", required=True),
        _applic_column("full_name_kana", clean=_kana(APPLIC_HEADERS["full_name_kana"][0])),
        _applic_column("sex", clean=_strip),
        _applic_column("birth_date", required=True, kind="date"),
        _applic_column("postal_code", clean=_postal),
        _applic_column("address"),
        _applic_column("school_code", clean=_clean_school_code),
        _applic_column("grade", kind="integer"),
        _applic_column("class_type", clean=_strip),
        _applic_column("guardian_id", max_length=30, clean=_clean_person_id),
        _applic_column("guardian_full_name"),
        _applic_column("guardian_full_name_kana", clean=_kana(APPLIC_HEADERS["guardian_full_name_kana"][0])),
        _applic_column("guardian_relationship"),
        _applic_column("entry_date", kind="date"),
        _applic_column("out_of_district", clean=_strip),
    ),
    # The real file carries many more columns (世帯番号, 異動事由, …) that an entrant roster does not need.
    allow_unknown_columns=True,
)

# --- shared value tables -------------------------------------------

_KOMU_SEX: Final[Mapping[str, Sex]] = {
    "男": "male",
    "女": "female",
    "未設定": "unspecified",
    "": "unspecified",
}
_CLASS_TYPES: Final[Mapping[str, bool]] = {"": False, "普通": False, "特別支援": True}
# 0/1 are the APPLIC flag values (unconfirmed); the Komu layout documents 有/無.
_OUT_OF_DISTRICT: Final[Mapping[str, bool]] = {"": False, "無": False, "有": True, "0": False, "1": True}
_ENTRANT_GRADES: Final = frozenset({"", "0", "1"})  # 0 is APPLIC's code for entrants; 1 is the grade itself


def entrant_birth_range(fiscal_year: int) -> tuple[dt.date, dt.date]:
    """Birth dates of children entering grade 1 in April of ``fiscal_year``: 2 April (Y−7) … 1 April (Y−6).

    By law (年齢計算ニ関スル法律) an age is reached at the end of the day before the birthday, so a child born
    on 1 April turns 6 on 31 March and joins the year group born the previous April.
    """
    return dt.date(fiscal_year - 7, 4, 2), dt.date(fiscal_year - 6, 4, 1)


# --- parsing -------------------------------------------------------

_HEADER_CODES: Final = frozenset({"header_unknown", "header_missing", "header_duplicate"})
_HEADINGS: Final[Mapping[str, Mapping[str, str]]] = {
    "komu": {c.key: c.header for c in KOMU_SCHEMA.columns},
    "applic": {c.key: c.header for c in APPLIC_SCHEMA.columns},
}


@functools.lru_cache(maxsize=8192)
def _checked_name(value: str, field_label: str) -> NameCheck:
    # Names repeat (family names above all); NameCheck is immutable, and an error is never cached.
    return check_name(value, field=field_label)


def parse_gakureibo(
    data: bytes,
    *,
    filename: str,
    layout: Layout,
    fiscal_year: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> GakureiboParse:
    """Parse a 学齢簿 extract of the entrants of ``fiscal_year`` (the April they enter) — see the module doc.

    ``max_bytes``/``max_rows`` are read_table's limits; a large city's whole 学齢簿 may need more than the
    defaults (the caller checks the byte limit before it even stores the upload)."""

    def read(schema_layout: Literal["komu", "applic"]) -> tuple[TableResult, _Builder]:
        builder = _Builder(filename, schema_layout, fiscal_year)
        schema = KOMU_SCHEMA if schema_layout == "komu" else APPLIC_SCHEMA
        table = read_table(
            data, filename=filename, schema=schema, max_bytes=max_bytes, max_rows=max_rows, on_row=builder.add
        )
        return table, builder

    if layout == "auto":
        komu, komu_builder = read("komu")
        if any(issue.code in _HEADER_CODES for issue in komu.errors):
            applic, applic_builder = read("applic")
            if not any(issue.code in _HEADER_CODES for issue in applic.errors):
                return applic_builder.build(applic)
        return komu_builder.build(komu)
    table, builder = read(layout)
    return builder.build(table)


def _split_full_name(full: str) -> tuple[str, str]:
    # Split on the first space of any width; the characters themselves are kept exactly as entered.
    parts = full.strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


class _Builder:
    def __init__(self, filename: str, layout: Literal["komu", "applic"], fiscal_year: int) -> None:
        self.filename = filename
        self.layout: Literal["komu", "applic"] = layout
        self.fiscal_year = fiscal_year
        self.errors: list[GakureiboIssue] = []
        self.warnings: list[GakureiboIssue] = []
        self._flagged: set[int] = set()
        self.rows: list[EntrantRow] = []

    def error(self, line: int | None, column: str | None, value: str | None, message: str, code: str) -> None:
        self.errors.append(GakureiboIssue(self.filename, line, column, value, message, code))

    def warn(self, line: int, column: str | None, value: str | None, message: str, code: str) -> None:
        self._flagged.add(line)
        self.warnings.append(GakureiboIssue(self.filename, line, column, value, message, code))

    def heading(self, key: str) -> str:
        return _HEADINGS[self.layout][key]

    def add(self, row: Row) -> None:
        """One row as read_table reads it: converted at once, so the file is never held as table rows."""
        entrant = self._row(row)
        if entrant is not None:
            self.rows.append(entrant)

    def build(self, table: TableResult) -> GakureiboParse:
        if table.fatal:
            # The file as a whole was refused: what was said about its first rows no longer matters.
            self.rows, self.errors, self.warnings = [], [], []
        self.errors[:0] = [_table_issue(self.filename, issue) for issue in table.errors]
        rows = self.rows
        self.rows = []
        for row in table.rows:  # only when read without ``on_row``
            self.add(row)
        rows.extend(self.rows)
        self._check_lost_zeros(rows)
        rows = [_with_review(r, r.line in self._flagged) for r in rows]
        if self.errors:
            rows = []  # all-or-nothing: the caller shows the issues, never a partial import
        return GakureiboParse(
            layout=self.layout,
            rows=rows,
            errors=self.errors,
            warnings=self.warnings,
            format=table.format,
            encoding=table.encoding,
        )

    def _name(self, line: int, key: str, value: str) -> str | None:
        column = self.heading(key)
        try:
            checked = _checked_name(value, f"「{column}」")
        except TextError as error:
            self.error(line, column, value, error.message, error.code)
            return None
        for message in checked.messages:
            self.warn(line, column, value, message, "private_use")
        return checked.value

    def _choice(self, line: int, key: str, value: str, choices: Mapping[str, object]) -> bool:
        if value in choices:
            return True
        allowed = "、".join(f"「{c}」" for c in choices if c)
        self.error(
            line,
            self.heading(key),
            value,
            f"「{value}」は使えません。{allowed}のいずれかを入力してください。",
            "choice",
        )
        return False

    def _row(self, row: Row) -> EntrantRow | None:
        v = row.values
        line = row.line
        before = len(self.errors)

        if self.layout == "komu":
            family, given = v.get("family_name", ""), v.get("given_name", "")
            family_kana, given_kana = v.get("family_name_kana", ""), v.get("given_name_kana", "")
            g_family, g_given = v.get("guardian_family_name", ""), v.get("guardian_given_name", "")
            g_family_kana = v.get("guardian_family_name_kana", "")
            g_given_kana = v.get("guardian_given_name_kana", "")
            name_keys = ("family_name", "given_name", "guardian_family_name", "guardian_given_name")
            sex_table: Mapping[str, Sex] = _KOMU_SEX
        else:
            family, given = _split_full_name(v.get("full_name", ""))
            family_kana, given_kana = _split_full_name(v.get("full_name_kana", ""))
            g_family, g_given = _split_full_name(v.get("guardian_full_name", ""))
            g_family_kana, g_given_kana = _split_full_name(v.get("guardian_full_name_kana", ""))
            name_keys = ("full_name", "full_name", "guardian_full_name", "guardian_full_name")
            sex_table = {**APPLIC_SEX_CODES, "": "unspecified"}

        names = [
            self._name(line, key, value)
            for key, value in zip(name_keys, (family, given, g_family, g_given), strict=True)
        ]
        kana_key = "family_name_kana" if self.layout == "komu" else "full_name_kana"
        if not family_kana or (self.layout == "komu" and given and not given_kana):
            self.warn(
                line,
                self.heading(kana_key),
                None,
                "ふりがなが空欄です。出席番号の並び順や帳票に使うため、確認して入力してください。",
                "kana_missing",
            )

        sex_value = v.get("sex", "")
        self._choice(line, "sex", sex_value, sex_table)
        class_value = v.get("class_type", "")
        self._choice(line, "class_type", class_value, _CLASS_TYPES)
        ood_value = v.get("out_of_district", "")
        self._choice(line, "out_of_district", ood_value, _OUT_OF_DISTRICT)
        grade_value = v.get("grade", "")
        if grade_value not in _ENTRANT_GRADES:
            self.error(
                line,
                self.heading("grade"),
                grade_value,
                f"学年「{grade_value}」は新入学者の名簿では使えません。0 または 1（新1年生）を入力するか、空欄にしてください。",
                "grade",
            )

        person_id = v["person_id"]
        if self.layout == "applic" and len(person_id) != APPLIC_PERSON_ID_LENGTH:
            hint = "Excelで開いて保存したため先頭の0が消えた可能性があります。" if person_id.isdigit() else ""
            self.error(
                line,
                self.heading("person_id"),
                person_id,
                f"宛名番号は{APPLIC_PERSON_ID_LENGTH}桁です（「{person_id}」は{len(person_id)}桁）。{hint}"
                "元のシステムから出力し直してください。",
                "person_id_length",
            )

        birth_date = dt.date.fromisoformat(v["birth_date"])
        low, high = entrant_birth_range(self.fiscal_year)
        if not low <= birth_date <= high:
            self.warn(
                line,
                self.heading("birth_date"),
                v["birth_date"],
                f"生年月日が{self.fiscal_year}年度の新1年生の範囲（{low:%Y年%-m月%-d日}〜{high:%Y年%-m月%-d日}）に"
                "ありません。就学猶予・就学の早期化などの事情がないか、生年月日を確認してください。",
                "birth_date_grade",
            )
        entry_date = dt.date.fromisoformat(v["entry_date"]) if v.get("entry_date") else None
        if entry_date is not None and not (
            dt.date(self.fiscal_year, 4, 1) <= entry_date <= dt.date(self.fiscal_year + 1, 3, 31)
        ):
            self.warn(
                line,
                self.heading("entry_date"),
                v["entry_date"],
                f"入学予定日が{self.fiscal_year}年度の中にありません。年度と入学予定日を確認してください。",
                "entry_date_year",
            )

        if len(self.errors) > before:
            return None
        family_name, given_name, guardian_family, guardian_given = (n or "" for n in names)
        return EntrantRow(
            line=line,
            person_id=person_id,
            family_name=family_name,
            given_name=given_name,
            family_name_kana=family_kana,
            given_name_kana=given_kana,
            sex=sex_table[sex_value],
            birth_date=birth_date,
            address=v.get("address", ""),
            postal_code=v.get("postal_code", ""),
            guardian_id=v.get("guardian_id", ""),
            guardian_family_name=guardian_family,
            guardian_given_name=guardian_given,
            guardian_family_name_kana=g_family_kana,
            guardian_given_name_kana=g_given_kana,
            guardian_relationship=v.get("guardian_relationship", "").strip(),
            guardian_phone=v.get("guardian_phone", ""),
            guardian_email=v.get("guardian_email", ""),
            guardian_address=v.get("guardian_address", ""),
            school_code=v.get("school_code", ""),
            grade=1,
            special_needs=_CLASS_TYPES[class_value],
            out_of_district=_OUT_OF_DISTRICT[ood_value],
            entry_date=entry_date,
            note=v.get("note", ""),
        )

    def _check_lost_zeros(self, rows: list[EntrantRow]) -> None:
        """Warn when a numeric id is shorter than the file's usual length: Excel drops leading zeros."""
        lengths = Counter(len(r.person_id) for r in rows if r.person_id.isdigit())
        if len(lengths) < 2:
            return
        usual, _count = lengths.most_common(1)[0]
        for r in rows:
            if r.person_id.isdigit() and len(r.person_id) < usual:
                self.warn(
                    r.line,
                    self.heading("person_id"),
                    r.person_id,
                    f"個人番号「{r.person_id}」が他の行（{usual}桁）より短くなっています。"
                    "Excelで先頭の0が消えた可能性があります。元のデータと照合してください。",
                    "person_id_short",
                )


_DUPLICATE: Final = re.compile(r"「(?P<value>.*)」が(?P<first>[0-9]+)行目と重複しています。")


def _table_issue(filename: str, issue: TableIssue) -> GakureiboIssue:
    """Carry a read_table issue over; a duplicate gets its value and a message naming both lines."""
    match = _DUPLICATE.fullmatch(issue.message) if issue.code == "duplicate_value" else None
    if match is None:
        return GakureiboIssue(filename, issue.line, issue.column, None, issue.message, issue.code)
    value, first = match.group("value"), match.group("first")
    return GakureiboIssue(
        filename,
        issue.line,
        issue.column,
        value,
        f"「{issue.column}」の「{value}」が{first}行目と{issue.line}行目で重複しています"
        "（全角・半角の違いは同じ値とみなします）。同じ子どもが2回載っていないか確認し、一方を削除してください。",
        issue.code,
    )


def _with_review(row: EntrantRow, flagged: bool) -> EntrantRow:
    return replace(row, needs_review=True) if flagged else row
