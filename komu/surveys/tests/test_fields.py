"""The field rules as pure functions: the builder's checks and the answer's checks."""

from __future__ import annotations

import pytest

from komu.surveys import fields as rules
from komu.surveys.fields import FieldSpec

from .conftest import Posted

NUMBER = FieldSpec(key="n", label="人数", kind="number", required=True, config={"min": 0, "max": 100})
TABLE = FieldSpec(key="t", label="学年別", kind="table", config={
    "columns": [{"key": "c1", "label": "人数", "kind": "number"}, {"key": "c2", "label": "備考", "kind": "text"}],
    "rows": [], "max_rows": 3})


def test_a_number_field_with_min_above_max_is_refused() -> None:
    with pytest.raises(rules.DefinitionError) as exc:
        rules.clean_config("number", {"min": "10", "max": "5"})
    assert "最大値は最小値以上" in exc.value.errors["max"]


def test_a_choice_field_needs_two_distinct_choices() -> None:
    with pytest.raises(rules.DefinitionError):
        rules.clean_config("single", {"choices": "はい"})
    with pytest.raises(rules.DefinitionError) as exc:
        rules.clean_config("multiple", {"choices": "はい\nはい"})
    assert "同じ選択肢" in exc.value.errors["choices"]
    assert rules.clean_config("single", {"choices": " はい \n\nいいえ"}) == {"choices": ["はい", "いいえ"]}


def test_a_table_needs_typed_columns() -> None:
    with pytest.raises(rules.DefinitionError) as exc:
        rules.clean_config("table", {"columns": "人数:画像"})
    assert "列の種類" in exc.value.errors["columns"]
    config = rules.clean_config("table", {"columns": "人数:数値\n備考:文字", "rows": "1年\n2年"})
    assert config["columns"][1] == {"key": "c2", "label": "備考", "kind": "text"}
    assert config["rows"] == ["1年", "2年"] and config["max_rows"] == 2


def test_a_file_field_needs_types_and_a_sane_size() -> None:
    with pytest.raises(rules.DefinitionError) as exc:
        rules.clean_config("file", {"types": [], "max_mb": "50"})
    assert set(exc.value.errors) == {"types", "max_mb"}
    assert rules.clean_config("file", {"types": ["pdf", "exe"], "max_mb": "2"}) == {"types": ["pdf"], "max_mb": 2}


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(rules.DefinitionError):
        rules.clean_config("slider", {})


def test_numbers_are_checked_against_their_range() -> None:
    values, errors = rules.parse_answer([NUMBER], Posted({"f_n": "101"}), require=True)
    assert errors == {"f_n": "人数は100以下で入力してください。"}
    values, errors = rules.parse_answer([NUMBER], Posted({"f_n": "abc"}), require=True)
    assert "整数で入力" in errors["f_n"]
    values, errors = rules.parse_answer([NUMBER], Posted({"f_n": "１２"}), require=True)
    assert values == {"n": 12} and not errors


def test_required_is_enforced_only_when_asked() -> None:
    values, errors = rules.parse_answer([NUMBER], Posted({"f_n": ""}), require=False)
    assert values == {"n": None} and not errors
    _values, errors = rules.parse_answer([NUMBER], Posted({"f_n": ""}), require=True)
    assert errors == {"f_n": "人数は必須です。入力してください。"}


def test_a_free_table_keeps_filled_rows_and_checks_each_cell() -> None:
    data = Posted({"f_t__rows": "3", "f_t__0__c1": "4", "f_t__0__c2": "ok", "f_t__2__c1": "-1"})
    values, errors = rules.parse_answer([TABLE], data, require=False)
    assert values["t"] == [{"c1": 4, "c2": "ok"}]
    assert "0以上" in errors["f_t__2__c1"]


def test_a_choice_outside_the_list_is_refused() -> None:
    spec = FieldSpec(key="s", label="方式", kind="single", config={"choices": ["A", "B"]})
    _values, errors = rules.parse_answer([spec], Posted({"f_s": "C"}), require=False)
    assert errors == {"f_s": "方式は選択肢から選んでください。"}


def test_text_length_and_dates() -> None:
    text = FieldSpec(key="x", label="備考", kind="text", config={"max_length": 3})
    date = FieldSpec(key="d", label="日付", kind="date")
    _values, errors = rules.parse_answer([text, date], Posted({"f_x": "四文字だ", "f_d": "2026-13-01"}),
                                         require=False)
    assert "3文字以内" in errors["f_x"] and "日付を正しく" in errors["f_d"]
