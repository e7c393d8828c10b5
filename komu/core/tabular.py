"""Safe CSV/XLSX import and export: the checklist in docs/domain.md §7.

Import (:func:`read_table`) takes untrusted bytes from a school or board office. It never guesses: every
problem becomes a :class:`TableIssue` naming the file, the line as the user will find it, the column
header and what to do, in Japanese. Limits are checked before the expensive step they protect (size
before decoding, zip directory before decompressing, header before rows).

Export (:func:`write_csv`, :func:`write_xlsx`) neutralises spreadsheet formulas and refuses to write a CP932
file that would lose characters, rather than putting "?" into someone's name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import openpyxl
import openpyxl.reader.excel
import openpyxl.reader.strings
import openpyxl.worksheet._reader
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell

from komu.core.text import TextError, cp932_unencodable, describe_char, reject_control_chars
from komu.core.wareki import parse_date_strict, parse_excel_cell_date

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_COLUMNS",
    "DEFAULT_MAX_ROWS",
    "FORMULA_TRIGGERS",
    "Column",
    "ColumnKind",
    "Cp932Error",
    "Cp932Problem",
    "Row",
    "TableIssue",
    "TableResult",
    "TableSchema",
    "ZipLimits",
    "escape_formula",
    "normalize_header",
    "openpyxl_xml_is_defused",
    "read_table",
    "write_csv",
    "write_xlsx",
]

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_ROWS: Final = 50_000  # a municipal 学齢簿 of a large city; a school's roster is far smaller
DEFAULT_MAX_COLUMNS: Final = 100
DEFAULT_MAX_ERRORS: Final = 200  # past this a user fixes the file wholesale, not line by line
DEFAULT_MAX_CELL_LENGTH: Final = 200

ColumnKind = Literal["text", "date", "integer"]


# --- schema and results ------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """One expected column.

    ``header`` is the Japanese heading users see; ``aliases`` are other headings accepted for it (compared
    after :func:`normalize_header`). ``required`` means the heading must be present and every row must have a
    value. ``kind`` decides what a spreadsheet cell may hold: "text" accepts only text (a number cell has
    already lost leading zeros or become 1.23E+11), "date" accepts date cells and strict date strings and
    yields ISO ``YYYY-MM-DD``, "integer" accepts whole numbers. ``clean`` (e.g. ``normalize_kana``) runs on
    non-blank values; its ``ValueError`` becomes an issue on that cell. ``unique`` reports repeats within
    the file (after ``clean``, so １２３ and 123 collide).
    """

    header: str
    key: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    kind: ColumnKind = "text"
    max_length: int = DEFAULT_MAX_CELL_LENGTH
    multiline: bool = False
    unique: bool = False
    clean: Callable[[str], str] | None = None


@dataclass(frozen=True, slots=True)
class TableSchema:
    columns: tuple[Column, ...]
    allow_unknown_columns: bool = False  # if True, unknown headings are ignored instead of reported

    def __post_init__(self) -> None:
        keys = [column.key for column in self.columns]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate column keys in schema: {keys}")
        names: dict[str, str] = {}
        for column in self.columns:
            for name in (column.header, *column.aliases):
                normalized = normalize_header(name)
                if names.setdefault(normalized, column.key) != column.key:
                    raise ValueError(f"heading {name!r} is claimed by two columns")

    def lookup(self) -> dict[str, Column]:
        return {normalize_header(name): c for c in self.columns for name in (c.header, *c.aliases)}


@dataclass(frozen=True, slots=True)
class TableIssue:
    """One problem, addressed the way the user will look for it. ``line`` is None for whole-file problems."""

    file: str
    line: int | None
    column: str | None
    message: str
    code: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" {self.line}行目"
        if self.column is not None:
            where += f"「{self.column}」"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Row:
    """A valid data row. ``line`` is where the row starts in the file (XLSX: the sheet row number).

    ``values`` holds the columns present in the file, keyed by :attr:`Column.key`; blank cells are "".
    """

    line: int
    values: dict[str, str]


@dataclass(slots=True)
class TableResult:
    """Rows that passed every check and the issues found. Import only when :attr:`ok`."""

    rows: list[Row]
    errors: list[TableIssue]
    format: Literal["csv", "xlsx"] | None = None
    encoding: str | None = None  # CSV only: "utf-8-sig", "utf-8" or "cp932"
    fatal: bool = False  # the file as a whole was rejected (rows handed to ``on_row`` before that are void)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Checked on the zip directory before openpyxl decompresses anything (zip bombs, §7.14).

    Python's zipfile stops at each member's declared size and fails the CRC check if the data runs on, so the
    declared sizes we check are the most that will ever be decompressed.
    """

    max_members: int = 500
    max_uncompressed_bytes: int = 100 * 1024 * 1024
    max_ratio: int = 100  # uncompressed / compressed, per member
    ratio_min_bytes: int = 1024 * 1024  # small members may compress very well without being a threat


class _Issues:
    """Collects issues; ``fatal`` means the file as a whole was rejected and no rows are returned."""

    def __init__(self, filename: str, max_errors: int) -> None:
        self.filename = filename
        self.max_errors = max_errors
        self.items: list[TableIssue] = []
        self.fatal = False

    @property
    def full(self) -> bool:
        return len(self.items) >= self.max_errors

    def add(self, line: int | None, column: str | None, message: str, code: str) -> None:
        if len(self.items) < self.max_errors:
            self.items.append(TableIssue(self.filename, line, column, message, code))
        if len(self.items) == self.max_errors and code != "too_many_errors":
            self.items[-1] = TableIssue(
                self.filename,
                None,
                None,
                f"エラーが{self.max_errors}件を超えたため、確認を中止しました。ファイル全体を見直してください。",
                "too_many_errors",
            )

    def reject_file(self, message: str, code: str, line: int | None = None) -> None:
        self.fatal = True
        self.add(line, None, message, code)


def normalize_header(header: str) -> str:
    """Compare headings loosely: NFKC, no spaces of any width, no BOM, casefolded (氏　名 = 氏名)."""
    text = unicodedata.normalize("NFKC", header.replace("\ufeff", ""))
    return "".join(text.split()).casefold()


# --- reading -----------------------------------------------------

_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls, and password-protected .xlsx
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_RESAVE_CSV = "Excelの「名前を付けて保存」で「CSV UTF-8（コンマ区切り）」を選んで保存し直してください。"
_RESAVE_XLSX = "Excelで開き、「Excel ブック（.xlsx）」として保存し直してください。"


# (line, cells) pairs: the heading row first, then data rows; a generator so it can be closed early.
_Records = Generator[tuple[int, Sequence[object]], None, None]


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}MB"


def read_table(
    data: bytes,
    *,
    filename: str,
    schema: TableSchema,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    zip_limits: ZipLimits = ZipLimits(),  # frozen, so safe as a default
    max_errors: int = DEFAULT_MAX_ERRORS,
    on_row: Callable[[Row], None] | None = None,
) -> TableResult:
    """Read a CSV or XLSX upload against ``schema``.

    XLSX is recognised by its zip signature, anything else is CSV: UTF-8 (with or without BOM) strictly, then
    CP932 strictly — never ``shift_jis``, which fails on 髙 﨑 ① ㈱. ``max_rows`` counts every line after the
    heading, blank ones included, so a file of a million empty rows is refused too.

    With ``on_row``, each valid row is handed to it as soon as it is read instead of being collected in
    :attr:`TableResult.rows` (which stays empty), so a large file is never held as rows in memory. The caller
    must still discard what it built when the result has errors, exactly as it would ignore ``rows``.
    """
    issues = _Issues(filename, max_errors)
    result = TableResult(rows=[], errors=issues.items)
    if len(data) > max_bytes:
        issues.reject_file(
            f"ファイルが大きすぎます（{_megabytes(len(data))}）。{_megabytes(max_bytes)}以下に分けてください。",
            "file_too_large",
        )
        return result

    records: _Records
    if data.startswith(_ZIP_MAGIC):
        result.format = "xlsx"
        records = _xlsx_records(data, issues, zip_limits, max_columns)
    elif data.startswith(_OLE_MAGIC):
        issues.reject_file(
            "古い形式（.xls）またはパスワード付きのファイルは読み込めません。"
            f"パスワードを解除してから、{_RESAVE_XLSX.removeprefix('Excelで開き、')}",
            "unsupported_format",
        )
        return result
    else:
        result.format = "csv"
        decoded = _decode_csv(data, issues)
        if decoded is None:
            return result
        text, result.encoding = decoded
        records = _csv_records(text, issues)

    try:
        result.rows = _read_records(
            records, schema, issues, max_rows, max_columns, ragged=result.format == "csv", on_row=on_row
        )
    finally:
        records.close()  # releases the workbook now if we stopped early, not whenever GC runs
    if issues.fatal:
        result.rows = []
        result.fatal = True
    return result


# Python's cp932 maps the unassigned single bytes 0xA0 and 0xFD–0xFF to U+F8F0–U+F8F3 instead of failing;
# in a CSV they only ever mean the file is not really CP932.
_CP932_STRAY_BYTES: Final = re.compile("[\uf8f0-\uf8f3]")


def _decode_csv(data: bytes, issues: _Issues) -> tuple[str, str] | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        issues.reject_file(f"UTF-16 のファイルは読み込めません。{_RESAVE_CSV}", "encoding")
        return None
    if data.startswith(_UTF8_BOM):
        # A BOM is a promise of UTF-8: falling back to CP932 here would only produce mojibake.
        try:
            return data[len(_UTF8_BOM) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as error:
            _report_undecodable(data, len(_UTF8_BOM) + error.start, issues, tried="UTF-8")
            return None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        if not data[: utf8_error.start].isascii():
            # Non-ASCII text already decoded as UTF-8, so this is a damaged UTF-8 file. Real CP932 text is
            # almost never valid UTF-8, and decoding this one as CP932 would turn every name into mojibake.
            _report_undecodable(data, utf8_error.start, issues, tried="UTF-8")
            return None
        try:
            text = data.decode("cp932")
        except UnicodeDecodeError as cp932_error:
            _report_undecodable(data, cp932_error.start, issues)
            return None
    stray = _CP932_STRAY_BYTES.search(text)
    if stray is not None:
        # Same byte length when re-encoded (CP932 round-trips decoded text), so this is the byte offset.
        _report_undecodable(data, len(text[: stray.start()].encode("cp932")), issues)
        return None
    return text, "cp932"


def _report_undecodable(
    data: bytes, offset: int, issues: _Issues, *, tried: str = "UTF-8 としても Shift_JIS（CP932）"
) -> None:
    line = data.count(b"\n", 0, offset) + 1
    issues.reject_file(
        f"{line}行目（先頭から{offset + 1}バイト目、0x{data[offset]:02X}）に、"
        f"{tried}として読めない文字があります。"
        f"ファイルが壊れているか、別の文字コードです。{_RESAVE_CSV}",
        "encoding",
        line=line,
    )


# A physical line as io.StringIO(newline="") yields it: up to and including \r\n, \r or \n (kept untranslated).
_LINE: Final = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _lines(text: str) -> Generator[str, None, None]:
    """The lines of ``text`` for csv.reader, without the copy io.StringIO makes (4 bytes a character for
    Japanese text: 100 MB for a large city's 学齢簿)."""
    for match in _LINE.finditer(text):
        yield match.group()


def _csv_records(text: str, issues: _Issues) -> _Records:
    # newline="" keeps line breaks inside quoted cells intact; line_num counts physical lines, so a record
    # starts one line after the previous record ended, however many lines its cells span.
    reader = csv.reader(_lines(text), strict=True)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            issues.reject_file(
                f"{previous_end + 1}行目からのCSVの形式が正しくありません。"
                'ダブルクォーテーション（"）の対応と、1つのセルが長すぎないかを確認してください。',
                "csv_syntax",
                line=previous_end + 1,
            )
            return
        yield previous_end + 1, cells
        previous_end = reader.line_num


def openpyxl_xml_is_defused() -> bool:
    """True if openpyxl parses workbook XML through defusedxml.

    openpyxl does so whenever defusedxml is importable and OPENPYXL_DEFUSEDXML is not "False". We check the
    functions its readers actually bound, rather than patching the standard library globally with
    ``defusedxml.defuse_stdlib()``.
    """
    parsers: list[object] = [
        openpyxl.reader.strings.iterparse,
        openpyxl.worksheet._reader.iterparse,
    ]
    if not openpyxl.LXML:  # with lxml, openpyxl uses its own parser with resolve_entities=False
        parsers.append(openpyxl.reader.excel.fromstring)
    return bool(openpyxl.DEFUSEDXML) and all(
        getattr(parser, "__module__", "").startswith("defusedxml") for parser in parsers
    )


def _zip_is_safe(data: bytes, issues: _Issues, limits: ZipLimits) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        issues.reject_file(f"XLSXファイルが壊れています。{_RESAVE_XLSX}", "xlsx_invalid")
        return False
    if len(members) > limits.max_members:
        issues.reject_file(
            f"XLSXファイルの構成が通常と異なります（内部ファイルが{len(members)}個）。{_RESAVE_XLSX}",
            "xlsx_members",
        )
        return False
    names: set[str] = set()
    total = 0
    for member in members:
        name = member.filename
        odd_name = name.startswith("/") or "\\" in name or ".." in name.split("/") or name in names
        names.add(name)
        if member.flag_bits & 0x1:
            issues.reject_file(
                f"暗号化されたXLSXファイルは読み込めません。パスワードを解除し、{_RESAVE_XLSX}",
                "xlsx_encrypted",
            )
            return False
        if odd_name or member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            issues.reject_file(f"XLSXファイルの構成が通常と異なります。{_RESAVE_XLSX}", "xlsx_odd_member")
            return False
        total += member.file_size
        ratio_exceeded = member.file_size > limits.max_ratio * max(member.compress_size, 1)
        if member.file_size > limits.ratio_min_bytes and ratio_exceeded:
            issues.reject_file(
                f"XLSXファイルの圧縮率が異常に高いため、安全のため読み込みを中止しました。{_RESAVE_XLSX}",
                "xlsx_ratio",
            )
            return False
    if total > limits.max_uncompressed_bytes:
        issues.reject_file(
            f"XLSXファイルの展開後のサイズが大きすぎます（{_megabytes(total)}）。"
            f"{_megabytes(limits.max_uncompressed_bytes)}以下になるよう分けてください。",
            "xlsx_too_large",
        )
        return False
    return True


def _xlsx_records(data: bytes, issues: _Issues, limits: ZipLimits, max_columns: int) -> _Records:
    if not _zip_is_safe(data, issues, limits):
        return
    if not openpyxl_xml_is_defused():
        # A deployment problem, not the user's: refuse loudly rather than parse untrusted XML unprotected.
        raise RuntimeError(
            "openpyxl is not using defusedxml; install defusedxml and unset OPENPYXL_DEFUSEDXML"
        )
    unreadable = f"XLSXファイルを読み込めませんでした。{_RESAVE_XLSX}"
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception:  # openpyxl raises many types on malformed input; all mean "unreadable file"
        issues.reject_file(unreadable, "xlsx_invalid")
        return
    try:
        if not workbook.worksheets:
            issues.reject_file(f"XLSXファイルにシートがありません。{_RESAVE_XLSX}", "xlsx_invalid")
            return
        sheet = workbook.worksheets[0]
        # Read one column past the limit so a too-wide heading is seen; read-only rows are padded to max_col,
        # and rows missing from the XML are yielded empty, so enumerate() gives the sheet's row numbers.
        rows = sheet.iter_rows(min_row=1, max_col=max_columns + 1, values_only=True)
        yield from enumerate(rows, start=1)
    except Exception:
        issues.reject_file(unreadable, "xlsx_invalid")
    finally:
        workbook.close()


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _column_name(index: int) -> str:
    return f"{index + 1}列目"


@dataclass(frozen=True, slots=True)
class _Header:
    columns: dict[int, Column]  # cell index → schema column
    labelled: frozenset[int]  # indexes with any heading, including unknown ones that are ignored
    width: int  # number of cells in the heading row
    unique: tuple[Column, ...] = ()  # the columns whose values must not repeat, in file order


def _read_header(
    cells: Sequence[object], line: int, schema: TableSchema, issues: _Issues, max_columns: int
) -> _Header | None:
    trimmed = list(cells)
    while trimmed and _is_blank(trimmed[-1]):
        trimmed.pop()
    if len(trimmed) > max_columns:
        issues.reject_file(
            f"列が多すぎます（上限{max_columns}列）。不要な列を削除してください。", "too_many_columns", line
        )
        return None
    lookup = schema.lookup()
    columns: dict[int, Column] = {}
    labelled: set[int] = set()
    seen: dict[str, int] = {}
    for index, raw in enumerate(trimmed):
        heading = "" if raw is None else str(raw)
        try:
            reject_control_chars(heading, f"見出し（{_column_name(index)}）")
        except TextError as error:
            issues.reject_file(error.message, "header_control_char", line)
            continue
        normalized = normalize_header(heading)
        if not normalized:
            continue  # an unlabelled column: its cells must stay empty (checked per row)
        labelled.add(index)
        column = lookup.get(normalized)
        if column is None:
            if not schema.allow_unknown_columns:
                expected = "、".join(f"「{c.header}」" for c in schema.columns)
                issues.reject_file(
                    f"見出し「{heading.strip()}」（{_column_name(index)}）は使えません。"
                    f"使える見出しは {expected} です。",
                    "header_unknown",
                    line,
                )
            continue
        if column.key in seen:
            issues.reject_file(
                f"見出し「{column.header}」が{_column_name(seen[column.key])}と{_column_name(index)}にあります。"
                "どちらか一方にしてください。",
                "header_duplicate",
                line,
            )
            continue
        seen[column.key] = index
        columns[index] = column
    for column in schema.columns:
        if column.required and column.key not in seen:
            issues.reject_file(f"必須の見出し「{column.header}」がありません。", "header_missing", line)
    if issues.fatal:
        return None
    unique = tuple(c for c in columns.values() if c.unique)
    return _Header(columns, frozenset(labelled), len(cells), unique)


def _read_records(
    records: _Records,
    schema: TableSchema,
    issues: _Issues,
    max_rows: int,
    max_columns: int,
    *,
    ragged: bool,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    rows: list[Row] = []
    header: _Header | None = None
    first_seen: dict[str, dict[str, int]] = {c.key: {} for c in schema.columns if c.unique}
    count = 0
    for line, cells in records:
        if header is None:
            if all(_is_blank(cell) for cell in cells):
                continue  # blank lines before the heading
            header = _read_header(cells, line, schema, issues, max_columns)
            if header is None:
                return []
            continue
        count += 1
        if count > max_rows:
            issues.reject_file(
                f"行数が多すぎます（上限{max_rows}行）。ファイルを分けてください。", "too_many_rows", line
            )
            return []
        if all(_is_blank(cell) for cell in cells):
            continue
        if ragged and len(cells) != header.width:
            issues.add(
                line,
                None,
                f"この行のセルの数（{len(cells)}）が見出しの数（{header.width}）と合いません。"
                'セル内のコンマや改行がダブルクォーテーション（"）で囲まれているか確認してください。',
                "ragged_row",
            )
        else:
            row = _read_row(line, cells, header, issues)
            if row is not None and _unique_ok(row, header, first_seen, issues):
                if on_row is None:
                    rows.append(row)
                else:
                    on_row(row)
        if issues.full:
            break
    if header is None and not issues.fatal:
        issues.reject_file("見出しの行がありません。1行目に見出しを入れてください。", "header_missing")
    return rows


def _read_row(line: int, cells: Sequence[object], header: _Header, issues: _Issues) -> Row | None:
    values: dict[str, str] = {}
    ok = True
    for index, cell in enumerate(cells):
        column = header.columns.get(index)
        if column is None:
            if index not in header.labelled and not _is_blank(cell):
                issues.add(
                    line,
                    _column_name(index),
                    "見出しのない列に値があります。見出しを付けるか、値を削除してください。",
                    "cell_without_header",
                )
                ok = False
            continue
        try:
            values[column.key] = _convert_cell(cell, column)
        except TextError as error:
            issues.add(line, column.header, error.message, error.code)
            ok = False
    return Row(line, values) if ok else None


def _unique_ok(row: Row, header: _Header, first_seen: dict[str, dict[str, int]], issues: _Issues) -> bool:
    ok = True
    for column in header.unique:
        value = row.values.get(column.key, "")
        if not value:
            continue
        first_line = first_seen[column.key].setdefault(value, row.line)
        if first_line != row.line:
            issues.add(
                row.line, column.header, f"「{value}」が{first_line}行目と重複しています。", "duplicate_value"
            )
            ok = False
    return ok


_TEXT_AS_TEXT = "Excelで列の書式を「文字列」にしてから入力し直してください。"
_EXPONENT_TEXT: Final = re.compile(r"[0-9](?:\.[0-9]+)?E\+[0-9]+", re.IGNORECASE)
_INTEGER: Final = re.compile(r"[0-9]+")


def _convert_cell(cell: object, column: Column) -> str:
    """One cell to its string value, or :class:`TextError` with a message about this cell."""
    header = column.header
    if cell is None:
        text = ""
    elif isinstance(cell, str):
        text = cell
    elif isinstance(cell, bool):  # before int: bool is an int
        raise TextError(f"「{header}」が TRUE/FALSE になっています。{_TEXT_AS_TEXT}", code="cell_type")
    elif isinstance(cell, int | float):
        if column.kind == "integer" and (isinstance(cell, int) or cell.is_integer()):
            text = str(int(cell))
        elif column.kind == "date":
            return parse_excel_cell_date(cell, field=header).isoformat()
        else:
            raise TextError(
                f"「{header}」が数値（{cell:.15g}）として保存されています。"
                "先頭の0が消えたり 1.23E+11 のような指数表記になったりして"
                f"値が変わっている可能性があります。{_TEXT_AS_TEXT}",
                code="cell_number_in_text",
            )
    elif isinstance(cell, dt.datetime | dt.date):
        if column.kind == "date":
            return parse_excel_cell_date(cell, field=header).isoformat()
        raise TextError(
            f"「{header}」が日付に変換されています（「1-2」のような値をExcelが日付にした可能性があります）。"
            f"{_TEXT_AS_TEXT}",
            code="cell_date_in_text",
        )
    else:  # time, timedelta, error values
        raise TextError(f"「{header}」の値を読み取れません。{_TEXT_AS_TEXT}", code="cell_type")

    # str.isprintable() is False for every control/format/separator character (and for a few harmless ones,
    # such as U+3000): the full check runs only then, which keeps a 100,000-row import fast.
    if not text.isprintable():
        reject_control_chars(text, f"「{header}」", allow="\r\n" if column.multiline else "")
    if len(text) > column.max_length:
        raise TextError(
            f"「{header}」が長すぎます（{len(text)}文字）。{column.max_length}文字以内にしてください。",
            code="too_long",
        )
    if not text.strip():
        if column.required:
            raise TextError(f"「{header}」は必須です。値を入力してください。", code="required")
        return ""
    if column.kind == "date":
        text = parse_date_strict(text, field=f"「{header}」").isoformat()
    elif column.kind == "integer":
        digits = unicodedata.normalize("NFKC", text).strip()
        if not _INTEGER.fullmatch(digits):
            raise TextError(f"「{header}」は数字で入力してください（「{text}」）。", code="not_integer")
        text = str(int(digits))
    elif ("E" in text or "e" in text) and _EXPONENT_TEXT.fullmatch(text.strip()):
        raise TextError(
            f"「{header}」が指数表記（{text.strip()}）になっています。Excelで数値として扱われ、元の値が失われています。"
            f"{_TEXT_AS_TEXT}",
            code="cell_exponent",
        )
    if column.clean is not None:
        try:
            text = column.clean(text)
        except TextError:
            raise
        except ValueError:
            raise TextError(f"「{header}」の値「{text}」が正しくありません。", code="invalid") from None
    return text


# --- writing -----------------------------------------------------

# Cells starting with these are run as formulas by Excel/LibreOffice/Sheets (OWASP "CSV injection"); the
# full-width forms are included because Japanese IMEs produce them and some spreadsheets treat them alike.
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r", "\0", "＝", "＋", "－", "＠")


def escape_formula(value: str) -> str:
    """Prefix ``'`` to a cell that a spreadsheet would run as a formula; other cells are unchanged."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


@dataclass(frozen=True, slots=True)
class Cp932Problem:
    row: int  # spreadsheet row: 1 is the heading
    column: str
    char: str


class Cp932Error(TextError):
    """The export cannot be written in CP932 without losing characters; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[Cp932Problem]) -> None:
        shown = "、".join(f"{p.row}行目「{p.column}」{describe_char(p.char)}" for p in problems[:20])
        more = f" ほか{len(problems) - 20}件" if len(problems) > 20 else ""
        super().__init__(
            f"Shift_JIS（CP932）で表せない文字があるため出力できません: {shown}{more}。"
            "UTF-8 で出力してください。",
            code="cp932_unencodable",
        )
        self.problems = tuple(problems)


def _table(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> list[list[str]]:
    table = [[escape_formula(h) for h in headers]]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(headers):
            raise ValueError(f"row {number} has {len(row)} cells, expected {len(headers)}")
        table.append([escape_formula(value) for value in row])
    return table


def write_csv(
    rows: Iterable[Sequence[str]],
    headers: Sequence[str],
    *,
    encoding: Literal["utf-8-sig", "cp932"] = "utf-8-sig",
) -> bytes:
    """RFC 4180 CSV (CRLF, minimal quoting), formula-safe.

    "utf-8-sig" carries a BOM so Excel opens it as UTF-8. With "cp932" every character CP932 cannot hold
    (𠮷, variation selectors, …) is listed in a :class:`Cp932Error` and nothing is written.
    """
    table = _table(rows, headers)
    if encoding == "cp932":
        problems = [
            Cp932Problem(row_number, headers[index], char)
            for row_number, row in enumerate(table, start=1)
            for index, value in enumerate(row)
            for char in cp932_unencodable(value)
        ]
        if problems:
            raise Cp932Error(problems)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(table)
    return buffer.getvalue().encode(encoding)


_SHEET_TITLE_FORBIDDEN: Final = re.compile(r"[\[\]:*?/\\]")


def write_xlsx(rows: Iterable[Sequence[str]], headers: Sequence[str], *, sheet_title: str) -> bytes:
    """An XLSX workbook with one sheet; every cell is a string (no numbers to lose zeros, no formulas)."""
    if not sheet_title or len(sheet_title) > 31 or _SHEET_TITLE_FORBIDDEN.search(sheet_title):
        raise TextError("シート名は1〜31文字で、[ ] : * ? / \\ を含めないでください。", code="sheet_title")
    table = _table(rows, headers)
    # Validate everything first: a write-only workbook abandoned half-way leaves a dangling writer behind.
    for row_number, row in enumerate(table, start=1):
        for index, value in enumerate(row):
            if ILLEGAL_CHARACTERS_RE.search(value):
                raise TextError(
                    f"{row_number}行目「{headers[index]}」にExcelで扱えない制御文字があるため出力できません。",
                    code="control_char",
                )
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title)
    for row in table:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # a string, whatever it looks like
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
