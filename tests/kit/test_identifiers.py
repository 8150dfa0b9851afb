"""RULES R7.1 (resident ID), R7.2 (sex), R7.3 (USCC), R7.5 (phones) and §10 masking."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onetrip.kit.identifiers import (
    IdentifierError,
    make_resident_id,
    make_uscc,
    normalize_phone,
    normalize_sex,
    parse_resident_id,
    upgrade_15_to_18,
    validate_uscc,
)
from onetrip.kit.masking import mask_id_number, mask_name, mask_phone, scrub
from onetrip.kit.names import name_pinyin, normalize_name


def test_known_valid_id_from_the_standard_example():
    # R7.1 weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, sum mod 11 → "10X98765432"
    assert parse_resident_id("11010519491231002X").sex == "2"
    assert parse_resident_id("11010519491231002x").number == "11010519491231002X"


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)), st.integers(0, 999))
def test_generated_ids_round_trip(birth, seq):
    rid = parse_resident_id(make_resident_id("110105", birth, seq))
    assert rid.birth_date == birth and rid.sex == ("1" if seq % 2 else "2")


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31)), st.integers(0, 999),
       st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_is_caught(birth, seq, pos, delta):
    rid = make_resident_id("110105", birth, seq)
    changed = rid[:pos] + str((int(rid[pos]) + delta) % 10) + rid[pos + 1:]
    with pytest.raises(IdentifierError):
        parse_resident_id(changed)


def test_fifteen_to_eighteen():
    assert upgrade_15_to_18("360426910101007") == "360426199101010071"
    r = parse_resident_id("360426910101007")
    assert r.converted_from_15 and r.number == "360426199101010071"


def _with_check(body17: str) -> str:
    from stdnum.cn import ric

    return body17 + ric.calc_check_digit(body17 + "0")


@pytest.mark.parametrize(("raw", "words"), [
    ("1101051949123100", "18 (or 15)"), (_with_check("11010519491331002"), "not a real date"),
    ("110105194912310021", "check character"), (_with_check("99010519491231002"), "area code"),
    ("1101051949123100A1", "digits"),
])
def test_invalid_ids_say_what_is_wrong(raw, words):
    with pytest.raises(IdentifierError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_resident_id(raw)


def test_sex_and_birth_cross_check():
    with pytest.raises(IdentifierError, match="sex"):
        parse_resident_id("11010519491231002X", expected_sex="1")
    with pytest.raises(IdentifierError, match="birth date"):
        parse_resident_id("11010519491231002X", expected_birth_date=dt.date(1949, 12, 30))
    with pytest.raises(IdentifierError, match="out of range"):
        parse_resident_id(make_resident_id("110105", dt.date(2030, 1, 1), 1), today=dt.date(2026, 1, 1))


def test_sex_codes():
    assert [normalize_sex(x) for x in ("1", "男", "female", "", None, "9")] == ["1", "1", "2", "0", "0", "9"]
    with pytest.raises(IdentifierError):
        normalize_sex("x")


def test_uscc():
    code = make_uscc("91330200MA2AAAAA0")
    assert validate_uscc(code.lower()) == code
    with pytest.raises(IdentifierError, match="check"):
        validate_uscc(code[:-1] + ("0" if code[-1] != "0" else "1"))
    with pytest.raises(IdentifierError, match="18"):
        validate_uscc("123")


def test_phones():
    assert normalize_phone("138 1234 5678") == "+8613812345678"
    assert normalize_phone("+86 574 8888 6666") == "+8657488886666"
    for bad in ("12345", "abc", ""):
        with pytest.raises(IdentifierError):
            normalize_phone(bad)


def test_masking_patterns_from_rules_section_10():
    assert mask_id_number("110105194912310021") == "110***********0021"
    assert mask_phone("13856785678") == "138****5678"
    assert mask_phone("+8613856785678") == "+86138****5678"
    assert mask_name("张三丰") == "张**"
    line = scrub("lookup id=11010519491231002X tel=13856785678 done")
    assert "19491231" not in line and "5678" in line and "1385678" not in line


def test_names():
    assert normalize_name("陳 麗") == "陈丽"
    assert normalize_name("ＷＡＮＧ") == "WANG"
    assert name_pinyin("吕洋") == "lvyang"
    assert name_pinyin("陈丽") == "chenli"


@pytest.mark.parametrize("raw", ["11010519491231002³", "٣٣٠٢٨١١٩٨٠٠٥١٧١٢٣١"])
def test_non_ascii_digits_are_refused_not_crashed(raw):
    with pytest.raises(IdentifierError):
        parse_resident_id(raw)


def test_full_width_digits_typed_on_a_chinese_keyboard_are_normalised():
    assert parse_resident_id("１１０１０５１９４９１２３１００２Ｘ").number == "11010519491231002X"
