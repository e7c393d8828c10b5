"""The demo 学齢簿 file parses as the board's real extract would: CP932, 令和 dates, 髙/﨑 kept exactly."""

from __future__ import annotations

import datetime

from komu.demo.gakureibo import demo_gakureibo
from komu.interop.gakureibo import parse_gakureibo

TODAY = datetime.date(2026, 11, 26)


def test_clean_file_parses_with_every_name_kept() -> None:
    extract = demo_gakureibo(today=TODAY)
    assert extract.fiscal_year == 2027
    parsed = parse_gakureibo(extract.data, filename="g.csv", layout="auto", fiscal_year=2027)
    assert parsed.ok, parsed.errors
    assert parsed.encoding == "cp932"
    assert len(parsed.rows) == extract.rows == 97
    surnames = {row.family_name for row in parsed.rows}
    assert {"髙橋", "山﨑", "宮﨑", "髙木"} <= surnames
    assert {row.school_code for row in parsed.rows} == {"B111299000117", "B111299000125", "B111299000133"} or len(
        {row.school_code for row in parsed.rows}
    ) == 3


def test_flawed_file_is_refused_on_exactly_the_two_flawed_lines() -> None:
    extract = demo_gakureibo(today=TODAY, flawed=True)
    parsed = parse_gakureibo(extract.data, filename="g.csv", layout="auto", fiscal_year=2027)
    assert not parsed.ok
    assert sorted({issue.line for issue in parsed.errors}) == [4, 9]
    assert {issue.column for issue in parsed.errors} == {"生年月日", "就学予定校コード"}
    assert parsed.rows == []


def test_utf8_variant_has_a_bom() -> None:
    assert demo_gakureibo(today=TODAY, encoding="utf-8-sig").data.startswith(b"\xef\xbb\xbf")
