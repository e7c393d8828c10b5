"""Reading, writing and validating a OneRoster 1.2 CSV bundle (Japan Profile). Pure: no ORM.

`validate_bundle` checks every file against the CSV binding and the Japan Profile — manifest, headers, ragged
rows, required fields, enumerations, dates, MEXT grade codes, sourcedId uniqueness and references between files —
and reports each problem by file, line and column in Japanese. The importer applies nothing unless it is clean.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from komu.core import codes
from komu.core.text import TextError, is_valid_kana, reject_control_chars
from komu.oneroster import spec

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_ZIP_MEMBERS = 40
MAX_ZIP_TOTAL = 1024 * 1024 * 1024
MAX_ZIP_RATIO = 200
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BOARD_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True, order=True)
class BundleError:
    """One problem: file, line (1 = header), column name ('' for the whole row/file) and what to do."""

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += _(" %(line)d行目") % {"line": self.line}
        if self.column:
            where += _("「%(column)s」列") % {"column": self.column}
        return f"{where}: {self.message}"


@dataclass
class Row:
    line: int
    values: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.values.get(key, "")


@dataclass
class Bundle:
    """A validated (or not) bundle: manifest properties, modes per file and rows per file."""

    manifest: dict[str, str] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    rows: dict[str, list[Row]] = field(default_factory=dict)
    errors: list[BundleError] = field(default_factory=list)
    _index: dict[str, dict[str, Row]] = field(default_factory=dict, repr=False)

    def error(self, file: str, line: int, column: str, message: str) -> None:
        self.errors.append(BundleError(file, line, column, message))

    @property
    def ok(self) -> bool:
        return not self.errors

    def by_id(self, name: str) -> dict[str, Row]:
        if name not in self._index:
            self._index[name] = {row["sourcedId"]: row for row in self.rows.get(name, [])}
        return self._index[name]


# --- reading ---------------------------------------------------------------------------------------------------

class BundleReadError(ValueError):
    """The bundle cannot be opened at all (not a zip, too large, a zip bomb)."""


def read_zip(data: bytes) -> dict[str, bytes]:
    """The CSV members of a zip, by file name; refuses zip bombs before reading (domain.md §7 item 14)."""
    if len(data) > MAX_FILE_BYTES:
        raise BundleReadError(_("ファイルが大きすぎます（200MB まで）。"))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BundleReadError(_("ZIP ファイルとして読めません。OneRoster の CSV 一式を ZIP にしてください。")) from exc
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise BundleReadError(_("ZIP の中のファイルが多すぎます（%(n)d個まで）。") % {"n": MAX_ZIP_MEMBERS})
    total = sum(info.file_size for info in members)
    packed = sum(info.compress_size for info in members) or 1
    if total > MAX_ZIP_TOTAL or total / packed > MAX_ZIP_RATIO:
        raise BundleReadError(_("ZIP の展開後のサイズが大きすぎます。中身を確認してください。"))
    files: dict[str, bytes] = {}
    for info in members:
        name = info.filename.rsplit("/", 1)[-1]
        if name.endswith(".csv"):
            files[name] = archive.read(info)
    return files


def write_csv(columns: Sequence[str], rows: Iterable[Mapping[str, str]]) -> bytes:
    """UTF-8 (no BOM), CRLF, RFC 4180 minimal quoting — the OneRoster CSV binding's format."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue().encode("utf-8")


def manifest_rows(modes: Mapping[str, str]) -> list[dict[str, str]]:
    rows = [{"propertyName": "manifest.version", "value": spec.MANIFEST_VERSION},
            {"propertyName": "oneroster.version", "value": spec.ONEROSTER_VERSION}]
    rows += [{"propertyName": f"file.{name}", "value": modes.get(name, "absent")} for name in spec.MANIFEST_FILES]
    rows += [{"propertyName": "source.systemName", "value": spec.SYSTEM_NAME},
             {"propertyName": "source.systemCode", "value": spec.SYSTEM_CODE}]
    return rows


def _decode(bundle: Bundle, filename: str, data: bytes) -> str | None:
    if len(data) > MAX_FILE_BYTES:
        bundle.error(filename, 0, "", _("ファイルが大きすぎます（200MB まで）。"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bundle.error(filename, line, "", _("UTF-8 として読めない文字があります（%(byte)dバイト目）。"
                                          "OneRoster の CSV は UTF-8 で保存してください。") % {"byte": exc.start + 1})
        return None


def _parse_csv(bundle: Bundle, filename: str, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    header: list[str] = []
    start = 1
    try:
        for index, record in enumerate(reader):
            if index == 0:
                header = record
            elif record:
                records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as exc:
        bundle.error(filename, start, "", _("CSV の形式が正しくありません（%(error)s）。引用符（\"）の対応を確認してください。")
                     % {"error": exc})
    return header, records


# --- validating ------------------------------------------------------------------------------------------------

def _check_manifest(bundle: Bundle, files: Mapping[str, bytes]) -> None:
    data = files.get("manifest.csv")
    if data is None:
        bundle.error("manifest.csv", 0, "", _("manifest.csv がありません。OneRoster の一式には必ず含めてください。"))
        return
    text = _decode(bundle, "manifest.csv", data)
    if text is None:
        return
    header, records = _parse_csv(bundle, "manifest.csv", text)
    if header != ["propertyName", "value"]:
        bundle.error("manifest.csv", 1, "", _("見出しは「propertyName,value」にしてください。"))
        return
    for line, record in records:
        if len(record) != 2:
            bundle.error("manifest.csv", line, "", _("列の数が見出しと合いません（2列にしてください）。"))
            continue
        bundle.manifest[record[0]] = record[1]
    if bundle.manifest.get("manifest.version") != spec.MANIFEST_VERSION:
        bundle.error("manifest.csv", 0, "manifest.version", _("manifest.version は「%(version)s」にしてください。")
                     % {"version": spec.MANIFEST_VERSION})
    if bundle.manifest.get("oneroster.version") not in spec.ACCEPTED_ONEROSTER_VERSIONS:
        bundle.error("manifest.csv", 0, "oneroster.version", _("oneroster.version は「1.2」にしてください（1.2 以外は取り込めません）。"))
    for name in spec.MANIFEST_FILES:
        mode = bundle.manifest.get(f"file.{name}", "absent")
        if mode not in spec.PROCESSING_MODES:
            bundle.error("manifest.csv", 0, f"file.{name}", _("file.%(name)s は bulk・delta・absent のいずれかにしてください。")
                         % {"name": name})
            continue
        present = f"{name}.csv" in files
        if mode == "absent" and present:
            bundle.error(f"{name}.csv", 0, "", _("manifest.csv で absent なのに %(name)s.csv があります。"
                                                  "manifest を直すか、ファイルを外してください。") % {"name": name})
        elif mode != "absent" and not present:
            bundle.error(f"{name}.csv", 0, "", _("manifest.csv で %(mode)s なのに %(name)s.csv がありません。")
                         % {"mode": mode, "name": name})
        elif mode != "absent" and name not in spec.FILES_BY_NAME:
            bundle.error(f"{name}.csv", 0, "", _("%(name)s.csv は名簿（rostering）のファイルではないため取り込めません。"
                                                  "absent にしてください。") % {"name": name})
        bundle.modes[name] = mode


def _parse_date(value: str) -> datetime.date | None:
    if not _DATE.match(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _check_headers(bundle: Bundle, file_spec: spec.FileSpec, header: list[str]) -> bool:
    expected = [c for c in file_spec.columns if not c.startswith("metadata.komu.")]
    for index, name in enumerate(expected):
        got = header[index] if index < len(header) else ""
        if got != name:
            shown = _("「%(got)s」") % {"got": got} if got else _("（なし）")
            bundle.error(file_spec.filename, 1, name, _("%(index)d列目の見出しが%(shown)sです。「%(name)s」にしてください"
                                                        "（OneRoster 1.2 の列の順番どおりに並べます）。")
                         % {"index": index + 1, "shown": shown, "name": name})
            return False
    for index, name in enumerate(header[len(expected):], start=len(expected) + 1):
        if not name.startswith("metadata."):
            bundle.error(file_spec.filename, 1, name, _("%(index)d列目「%(name)s」は OneRoster 1.2 にない列です。"
                                                        "追加の列は metadata. で始めてください。")
                         % {"index": index, "name": name})
            return False
    if len(set(header)) != len(header):
        bundle.error(file_spec.filename, 1, "", _("同じ見出しの列が2つあります。"))
        return False
    return True


def _check_row(bundle: Bundle, file_spec: spec.FileSpec, mode: str, row: Row) -> None:
    f = file_spec.filename
    status = row["status"]
    if mode == "delta":
        if status not in spec.STATUSES:
            bundle.error(f, row.line, "status", _("差分（delta）では status に active か tobedeleted を入れてください。"))
        if not _DATETIME.match(row["dateLastModified"]):
            bundle.error(f, row.line, "dateLastModified",
                         _("差分（delta）では dateLastModified に UTC の日時（例 2026-04-01T09:00:00.000Z）を入れてください。"))
    else:
        if status not in ("", "active"):
            bundle.error(f, row.line, "status", _("一括（bulk）では status は空欄にしてください（tobedeleted は差分でだけ使えます）。"))
        if row["dateLastModified"] and not _DATETIME.match(row["dateLastModified"]):
            bundle.error(f, row.line, "dateLastModified", _("日時は UTC の ISO 8601（例 2026-04-01T09:00:00.000Z）で書いてください。"))
    deleting = status == "tobedeleted"
    for column, value in row.values.items():
        try:
            reject_control_chars(value, column)
        except TextError as exc:
            bundle.error(f, row.line, column, str(exc))
    for column in sorted(file_spec.required):
        if deleting and column != "sourcedId":
            break
        if not row[column].strip():
            bundle.error(f, row.line, column, _("「%(column)s」は必須です。値を入れてください。") % {"column": column})
    if deleting:
        return
    for column, allowed in file_spec.enums.items():
        value = row[column]
        if value and value not in allowed:
            bundle.error(f, row.line, column, _("「%(value)s」は使えません。%(allowed)s のいずれかにしてください。")
                         % {"value": value, "allowed": "・".join(allowed)})
    for column in file_spec.dates:
        value = row[column]
        if value and _parse_date(value) is None:
            bundle.error(f, row.line, column, _("日付「%(value)s」が正しくありません。YYYY-MM-DD（例 2026-04-01）で書いてください。")
                         % {"value": value})
    for column in file_spec.grade_columns:
        for grade in filter(None, (g.strip() for g in row[column].split(","))):
            if grade not in spec.GRADES:
                bundle.error(f, row.line, column, _("学年コード「%(grade)s」は日本プロファイルにありません。"
                                                           "P1〜P6・J1〜J3・H1〜H3・E1〜E3 で書いてください。")
                             % {"grade": grade})


def _parse_file(bundle: Bundle, file_spec: spec.FileSpec, data: bytes, mode: str) -> None:
    f = file_spec.filename
    text = _decode(bundle, f, data)
    if text is None:
        return
    header, records = _parse_csv(bundle, f, text)
    if not _check_headers(bundle, file_spec, header):
        return
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for line, record in records:
        if len(record) != len(header):
            bundle.error(f, line, "", _("列の数（%(got)d）が見出し（%(expected)d）と合いません。カンマや引用符を確認してください。")
                         % {"got": len(record), "expected": len(header)})
            continue
        row = Row(line, dict(zip(header, record, strict=True)))
        _check_row(bundle, file_spec, mode, row)
        sourced_id = row["sourcedId"]
        if sourced_id in seen:
            bundle.error(f, line, "sourcedId", _("sourcedId「%(sid)s」が %(line)d行目と重複しています。")
                         % {"sid": sourced_id, "line": seen[sourced_id]})
        seen.setdefault(sourced_id, line)
        rows.append(row)
    bundle.rows[file_spec.name] = rows


@dataclass
class _Refs:
    """References that name nothing in the bundle: resolved against the database in one batch at the end."""

    pending: list[tuple[str, int, str, str, str]] = field(default_factory=list)


KnownLookup = Callable[[Mapping[str, set[str]]], Mapping[str, set[str]]]


def _ref(bundle: Bundle, file: str, row: Row, column: str, target: str, known: _Refs,
         value: str | None = None) -> Row | None:
    """The row `value` (default: the column's value) names in `target`; unresolved names wait in `known`."""
    value = row[column] if value is None else value
    if not value:
        return None
    found = bundle.by_id(target).get(value)
    if found is None:
        known.pending.append((file, row.line, column, value, target))
    return found


def _resolve(bundle: Bundle, refs: _Refs, lookup: KnownLookup | None) -> None:
    wanted: dict[str, set[str]] = defaultdict(set)
    for _file, _line, _column, value, target in refs.pending:
        wanted[target].add(value)
    existing = lookup(wanted) if lookup is not None and wanted else {}
    for file, line, column, value, target in refs.pending:
        if value not in existing.get(target, set()):
            bundle.error(file, line, column, _("「%(value)s」は %(target)s.csv にありません（参照先の sourcedId を確認してください）。")
                         % {"value": value, "target": target})


def _check_japan_profile(bundle: Bundle, known: _Refs) -> None:
    for row in bundle.rows.get("orgs", []):
        if row["status"] == "tobedeleted":
            continue
        identifier = row["identifier"]
        if row["type"] == "school":
            try:
                codes.validate_school_code(identifier)
            except codes.CodeError as exc:
                bundle.error("orgs.csv", row.line, "identifier", _("学校の identifier は学校コード（13桁）です: %(error)s") % {"error": exc})
            parent = _ref(bundle, "orgs.csv", row, "parentSourcedId", "orgs", known)
            if not row["parentSourcedId"]:
                bundle.error("orgs.csv", row.line, "parentSourcedId", _("学校の parentSourcedId には設置者（district）の sourcedId を入れてください。"))
            elif parent is not None and parent["type"] != "district":
                bundle.error("orgs.csv", row.line, "parentSourcedId", _("学校の親は district（教育委員会）にしてください。"))
        elif row["type"] == "district" and not _BOARD_CODE.match(identifier):
            bundle.error("orgs.csv", row.line, "identifier", _("district の identifier は教育委員会コード（数字6桁）にしてください。"))
    for row in bundle.rows.get("academicSessions", []):
        if row["status"] == "tobedeleted":
            continue
        start, end = _parse_date(row["startDate"]), _parse_date(row["endDate"])
        if start and end and start > end:
            bundle.error("academicSessions.csv", row.line, "endDate", _("endDate は startDate 以降にしてください。"))
        year = row["schoolYear"]
        if not re.fullmatch(r"\d{4}", year):
            bundle.error("academicSessions.csv", row.line, "schoolYear", _("schoolYear は西暦4桁の年度（例 2026）にしてください。"))
            continue
        first, last = datetime.date(int(year), 4, 1), datetime.date(int(year) + 1, 3, 31)
        if row["type"] == "schoolYear":
            if row["title"] != f"{year}年度":
                bundle.error("academicSessions.csv", row.line, "title", _("年度の title は「%(year)s年度」にしてください。") % {"year": year})
            if row["parentSourcedId"]:
                bundle.error("academicSessions.csv", row.line, "parentSourcedId", _("年度（schoolYear）には親を指定しません。空欄にしてください。"))
        else:
            parent = _ref(bundle, "academicSessions.csv", row, "parentSourcedId", "academicSessions", known)
            if not row["parentSourcedId"]:
                bundle.error("academicSessions.csv", row.line, "parentSourcedId", _("学期には親の年度（schoolYear）の sourcedId を入れてください。"))
            elif parent is not None and parent["type"] != "schoolYear":
                bundle.error("academicSessions.csv", row.line, "parentSourcedId", _("学期の親は schoolYear にしてください。"))
        for column, day in (("startDate", start), ("endDate", end)):
            if day and not first <= day <= last:
                bundle.error("academicSessions.csv", row.line, column, _("%(year)s年度（%(first)s〜%(last)s）の中の日付にしてください。")
                             % {"year": year, "first": first, "last": last})
    for row in bundle.rows.get("courses", []):
        if row["status"] == "tobedeleted":
            continue
        if row["courseCode"]:
            bundle.error("courses.csv", row.line, "courseCode", _("日本プロファイルでは courseCode は空欄にします。"))
        session = _ref(bundle, "courses.csv", row, "schoolYearSourcedId", "academicSessions", known)
        if session is not None and session["type"] != "schoolYear":
            bundle.error("courses.csv", row.line, "schoolYearSourcedId", _("schoolYearSourcedId には年度（schoolYear）を指定してください。"))
        org = _ref(bundle, "courses.csv", row, "orgSourcedId", "orgs", known)
        if org is not None and org["type"] != "school":
            bundle.error("courses.csv", row.line, "orgSourcedId", _("orgSourcedId には学校（school）を指定してください。"))
    for row in bundle.rows.get("classes", []):
        if row["status"] == "tobedeleted":
            continue
        _ref(bundle, "classes.csv", row, "courseSourcedId", "courses", known)
        school = _ref(bundle, "classes.csv", row, "schoolSourcedId", "orgs", known)
        if school is not None and school["type"] != "school":
            bundle.error("classes.csv", row.line, "schoolSourcedId", _("schoolSourcedId には学校（school）を指定してください。"))
        for term in filter(None, (t.strip() for t in row["termSourcedIds"].split(","))):
            _ref(bundle, "classes.csv", row, "termSourcedIds", "academicSessions", known, value=term)
        if row["classType"] == "homeroom" and len([g for g in row["grades"].split(",") if g.strip()]) != 1:
            bundle.error("classes.csv", row.line, "grades", _("学級（homeroom）には学年コードを1つだけ入れてください。"))
        special = row["metadata.jp.specialNeeds"]
        category = row["metadata.komu.specialNeedsCategory"]
        if category and special != "true":
            bundle.error("classes.csv", row.line, "metadata.komu.specialNeedsCategory",
                         _("障害種別は特別支援学級（metadata.jp.specialNeeds が true）にだけ入れられます。"))
    for row in bundle.rows.get("users", []):
        if row["status"] == "tobedeleted":
            continue
        for column in ("metadata.jp.kanaGivenName", "metadata.jp.kanaFamilyName", "metadata.jp.kanaMiddleName"):
            if row[column] and not is_valid_kana(row[column]):
                bundle.error("users.csv", row.line, column, _("ふりがなはカタカナ（またはひらがな）で書いてください。"))
        _ref(bundle, "users.csv", row, "primaryOrgSourcedId", "orgs", known)
        home = _ref(bundle, "users.csv", row, "metadata.jp.homeClass", "classes", known)
        if home is not None and home["classType"] != "homeroom":
            bundle.error("users.csv", row.line, "metadata.jp.homeClass", _("metadata.jp.homeClass には学級（homeroom）を指定してください。"))
        for agent in filter(None, (a.strip() for a in row["agentSourcedIds"].split(","))):
            _ref(bundle, "users.csv", row, "agentSourcedIds", "users", known, value=agent)
    for row in bundle.rows.get("roles", []):
        if row["status"] == "tobedeleted":
            continue
        _ref(bundle, "roles.csv", row, "userSourcedId", "users", known)
        org = _ref(bundle, "roles.csv", row, "orgSourcedId", "orgs", known)
        if org is not None and row["role"] in ("student", "teacher", "principal", "siteAdministrator") \
                and org["type"] != "school":
            bundle.error("roles.csv", row.line, "orgSourcedId", _("%(role)s の所属（orgSourcedId）は学校（school）にしてください。")
                         % {"role": row["role"]})
        begin, end = _parse_date(row["beginDate"]), _parse_date(row["endDate"])
        if begin and end and begin > end:
            bundle.error("roles.csv", row.line, "endDate", _("endDate は beginDate 以降にしてください。"))
    for row in bundle.rows.get("enrollments", []):
        if row["status"] == "tobedeleted":
            continue
        klass = _ref(bundle, "enrollments.csv", row, "classSourcedId", "classes", known)
        _ref(bundle, "enrollments.csv", row, "userSourcedId", "users", known)
        school = _ref(bundle, "enrollments.csv", row, "schoolSourcedId", "orgs", known)
        if klass is not None and school is not None and klass["schoolSourcedId"] != row["schoolSourcedId"]:
            bundle.error("enrollments.csv", row.line, "schoolSourcedId", _("学級の学校（classes.csv の schoolSourcedId）と一致させてください。"))
        number = row["metadata.jp.ShussekiNo"]
        if number and not (number.isascii() and number.isdigit() and 1 <= int(number) <= 999):
            bundle.error("enrollments.csv", row.line, "metadata.jp.ShussekiNo", _("出席番号は 1〜999 の半角数字にしてください。"))
        if row["role"] == "student" and klass is not None and klass["classType"] == "homeroom" and not number:
            bundle.error("enrollments.csv", row.line, "metadata.jp.ShussekiNo", _("学級（homeroom）の児童生徒には出席番号を入れてください。"))
    for row in bundle.rows.get("demographics", []):
        if row["status"] == "tobedeleted":
            continue
        _ref(bundle, "demographics.csv", row, "sourcedId", "users", known)
        birth = _parse_date(row["birthDate"])
        if birth and birth > datetime.date.today():
            bundle.error("demographics.csv", row.line, "birthDate", _("生年月日が未来の日付です。"))


def validate_bundle(files: Mapping[str, bytes], *, known: KnownLookup | None = None) -> Bundle:
    """Check a bundle (file name → bytes). `known` answers which of the sourcedIds the bundle refers to without
    containing them already exist in the database (a delta may refer to them without repeating them)."""
    bundle = Bundle()
    _check_manifest(bundle, files)
    if not bundle.ok:
        bundle.errors.sort()
        return bundle
    for file_spec in spec.FILES:
        mode = bundle.modes.get(file_spec.name, "absent")
        if mode != "absent":
            _parse_file(bundle, file_spec, files[file_spec.filename], mode)
    refs = _Refs()
    _check_japan_profile(bundle, refs)
    _resolve(bundle, refs, known)
    order = {name: index for index, name in enumerate(["manifest.csv", *(s.filename for s in spec.FILES)])}
    bundle.errors.sort(key=lambda e: (order.get(e.file, 99), e.line))
    return bundle
