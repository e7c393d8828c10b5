"""A demo 学齢簿 extract: next year's entrants of こもれび市, as the board's system would export it.

`komu demo gakureibo --out FILE` writes it in the documented Komu layout (komu.interop.gakureibo), CP932 by
default — what Japanese Excel saves — with 令和 dates and the names every import must survive (髙, 﨑). With
``--flawed`` two rows carry the mistakes a dry run must catch: an impossible date and a 学校コード whose check
digit is wrong. Fictional people only; nothing is written to the database.
"""

from __future__ import annotations

import csv
import datetime
import io
import random
from dataclasses import dataclass
from typing import Final, Literal

from faker import Faker

from komu.core.codes import make_school_code, prefecture_name
from komu.core.wareki import fiscal_year_of
from komu.demo.builder import CITY, DEFAULT_SEED, MUNICIPAL_BOARD_CODE, PREFECTURE_CODE, TOWNS
from komu.interop.gakureibo import KOMU_SCHEMA, entrant_birth_range

# Entrants per elementary school of the demo (school number → children), about the size of its grade 1.
ENTRANTS: Final = {"9900011": 48, "9900012": 30, "9900013": 19}
# Surnames outside JIS X 0208 that still encode in CP932 (IBM extensions); 𠮷 does not, so it is left out of
# the CP932 file (the import's own tests cover it in UTF-8).
SPECIAL: Final = (("髙橋", "タカハシ"), ("山﨑", "ヤマザキ"), ("宮﨑", "ミヤザキ"), ("髙木", "タカギ"))

Encoding = Literal["cp932", "utf-8-sig", "utf-8"]


@dataclass(frozen=True)
class DemoGakureibo:
    data: bytes
    fiscal_year: int
    rows: int
    board_code: str
    flawed_lines: tuple[int, ...]


def reiwa(day: datetime.date, *, short: bool = False) -> str:
    """令和 as Excel users type it: 令和2年4月1日 (or R2.4.1); 令和元年 for 2019."""
    year = day.year - 2018
    if short:
        return f"R{year}.{day.month}.{day.day}"
    return f"令和{'元' if year == 1 else year}年{day.month}月{day.day}日"


def demo_gakureibo(
    *, today: datetime.date, seed: int = DEFAULT_SEED, encoding: Encoding = "cp932", flawed: bool = False
) -> DemoGakureibo:
    """The entrants of the 年度 after ``today``'s, designated to the three demo elementary schools."""
    fiscal_year = fiscal_year_of(today) + 1
    rng = random.Random(seed + fiscal_year)
    fake = Faker("ja_JP")
    fake.seed_instance(seed + fiscal_year)
    first, last = entrant_birth_range(fiscal_year)
    span = (last - first).days
    city = f"{prefecture_name(PREFECTURE_CODE)}{CITY}"
    headers = [column.header for column in KOMU_SCHEMA.columns]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    number = 0
    special_left = list(SPECIAL)
    for school_number, count in ENTRANTS.items():
        code = make_school_code("B1", PREFECTURE_CODE, "2", school_number)
        for _ in range(count):
            number += 1
            sex = rng.choice(("男", "女"))
            if special_left and number % 9 == 2:
                family, family_kana = special_left.pop()
            else:
                family, family_kana, _romaji = fake.last_name_pair()
            given, given_kana, _r = fake.first_name_male_pair() if sex == "男" else fake.first_name_female_pair()
            relationship = "母" if rng.random() < 0.7 else "父"
            pair = fake.first_name_female_pair if relationship == "母" else fake.first_name_male_pair
            g_given, g_given_kana, _g = pair()
            birth = first + datetime.timedelta(days=rng.randrange(span + 1))
            town = rng.choice(TOWNS)
            address = f"{city}{town}{rng.randint(1, 5)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
            phone = f"090-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
            values = {
                "個人番号": f"{990000000000000 + number * 7:015d}",
                "氏名（姓）": family,
                "氏名（名）": given,
                "ふりがな（姓）": family_kana,
                "ふりがな（名）": given_kana,
                "性別": sex,
                "生年月日": reiwa(birth, short=rng.random() < 0.3),
                "住所": address,
                "郵便番号": f"330-{rng.randint(0, 9999):04d}",
                "保護者氏名（姓）": family,
                "保護者氏名（名）": g_given,
                "保護者ふりがな（姓）": family_kana,
                "保護者ふりがな（名）": g_given_kana,
                "続柄": relationship,
                "保護者電話番号": phone,
                "保護者メールアドレス": "",
                "保護者住所": address,
                "就学予定校コード": code,
                "学年": "0",
                "学級種別": "特別支援" if rng.random() < 0.03 else "普通",
                "区域外就学": "無",
                "入学予定日": reiwa(datetime.date(fiscal_year, 4, 7)),
                "備考": "",
            }
            writer.writerow([values.get(h, "") for h in headers])
    text = out.getvalue()
    flawed_lines: tuple[int, ...] = ()
    if flawed:
        lines = text.split("\r\n")
        # Line numbers as the import reports them: the heading is line 1.
        flawed_lines = (4, 9)
        cells = lines[3].split(",")
        cells[headers.index("生年月日")] = f"令和{fiscal_year - 2025}年2月30日"
        lines[3] = ",".join(cells)
        cells = lines[8].split(",")
        good = cells[headers.index("就学予定校コード")]
        cells[headers.index("就学予定校コード")] = good[:-1] + str((int(good[-1]) + 1) % 10)
        lines[8] = ",".join(cells)
        text = "\r\n".join(lines)
    return DemoGakureibo(
        data=text.encode(encoding),
        fiscal_year=fiscal_year,
        rows=number,
        board_code=MUNICIPAL_BOARD_CODE,
        flawed_lines=flawed_lines,
    )
