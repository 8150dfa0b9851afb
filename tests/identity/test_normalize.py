"""Issue 3 §1: every normalisation rule, with Chinese examples."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.identity import normalize as nz
from onetrip.kit.identifiers import make_resident_id


@pytest.mark.parametrize(("raw", "expected"), [
    ("陳麗", "陈丽"), ("錢芳", "钱芳"), ("張 偉", "张伟"), ("ＷＡＮＧ Ｗｅｉ", "WANG Wei"), ("  李娜 ", "李娜"),
])
def test_traditional_to_simplified_and_width(raw, expected):
    assert nz.clean_name(raw) == expected


@pytest.mark.parametrize(("name", "key"), [
    ("单丽", "shanli"), ("曾伟", "zengwei"), ("解放", "xiefang"), ("仇英", "qiuying"), ("区志明", "ouzhiming"),
    ("朴成", "piaocheng"), ("翟明", "zhaiming"), ("乐天", "yuetian"), ("陈丽", "chenli"), ("尉迟敬德", "yuchijingde"),
])
def test_surname_readings(name, key):
    assert nz.name_pinyin_key(name) == key


def test_heteronym_alternatives_keep_the_common_reading():
    assert nz.name_pinyin_alternatives("单丽")[:2] == ["shanli", "danli"]
    assert "cengwei" in nz.name_pinyin_alternatives("曾伟")
    assert "jiefang" in nz.name_pinyin_alternatives("解放")
    assert nz.name_pinyin_alternatives("Shan Li") == ["shanli"]
    assert len(nz.name_pinyin_alternatives("重长朝行")) <= nz.MAX_ALTERNATIVES


@pytest.mark.parametrize("written", ["Lü Wei", "Lv Wei", "LYU WEI", "lu wei", "lu:wei"])
def test_lv_lu_lyu_are_one_key(written):
    assert nz.fold_pinyin(written) == "luwei" == nz.name_pinyin_key("吕伟")


def test_nv_nu_nyu_are_one_key():
    assert nz.fold_pinyin("Nü Hong") == nz.fold_pinyin("Nyu Hong") == nz.fold_pinyin("nv hong") == "nuhong"


def test_character_similarity_counts_characters_not_bytes():
    assert nz.char_distance("陈丽", "陈莉") == 1  # DuckDB's byte levenshtein says 2 or 3
    assert nz.char_similarity("陈丽", "陈莉") == 0.5
    assert nz.char_similarity("陈丽", "陈丽") == 1.0
    with pytest.raises(TypeError):
        nz.char_similarity("陈丽".encode(), "陈莉".encode())  # type: ignore[arg-type]


def test_resident_ids_validated_and_15_upgraded():
    rid18 = make_resident_id("330281", dt.date(1965, 12, 30), 72)
    assert nz.resident_id_or_none(rid18.lower()) == rid18
    assert nz.resident_id_or_none(rid18[:6] + rid18[8:17]) == rid18  # 15 → 18
    assert nz.resident_id_or_none("３３０２８１" + rid18[6:]) == rid18  # full-width digits (NFKC)
    assert nz.resident_id_or_none(rid18[:-1] + ("0" if rid18[-1] != "0" else "1")) is None  # check digit
    assert nz.resident_id_or_none("") is None


def test_phones_become_e164_or_missing():
    assert nz.phone_or_none("137 0000 1234") == "+8613700001234"
    assert nz.phone_or_none("+86 137-0000-1234") == "+8613700001234"
    assert nz.phone_or_none("12345") is None


def test_sex_codes_unknown_is_missing():
    assert nz.sex_or_none("男") == "1" and nz.sex_or_none("女") == "2" and nz.sex_or_none("female") == "2"
    assert nz.sex_or_none("0") is None and nz.sex_or_none("9") is None and nz.sex_or_none("x") is None


def test_address_parts():
    a = nz.split_address("浙江省沧澜市青溪区文昌街道华庭花园18幢2单元1404室")
    assert (a.province, a.city, a.district, a.street, a.line) == ("浙江省", "沧澜市", "青溪区", "文昌街道",
                                                                    "华庭花园18幢2单元1404室")
    b = nz.split_address("青溪區柳塘鎮柳塘村5組18號")  # traditional, no province/city
    assert (b.province, b.city, b.district, b.street) == (None, None, "青溪区", "柳塘镇")


def test_address_key_ignores_abbreviation():
    assert nz.address_key("翠湖小区3幢2单元501室") == nz.address_key("翠湖3-2-501")
    assert nz.address_key(None) is None


def test_birth_date_text():
    assert nz.birth_date_text(dt.date(1980, 3, 4)) == "1980-03-04"
    assert nz.birth_date_text("1980-03-04") == "1980-03-04"
    assert nz.birth_date_text("1980-13-40") is None
