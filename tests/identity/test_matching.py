"""Issue 3 §2: the pure Fellegi–Sunter scorer — agrees with Splink, symmetric, characters above pinyin,
never links different valid IDs."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onetrip.demo import mpi as demo_mpi
from onetrip.identity import matching
from onetrip.identity.mpi import default_model_json
from onetrip.kit.identifiers import make_resident_id

F = matching.features
MODEL = matching.Model.from_splink(default_model_json()).ensure_ordering()
RID = make_resident_id("330122", dt.date(1980, 3, 4), 124)
RID2 = make_resident_id("330122", dt.date(1980, 3, 4), 131)

RECORDS = [
    F(name="陈丽", birth_date="1980-03-04", sex="2", phone="13700001234", street="文昌街道",
      address_line="翠湖小区3幢2单元501室", id_number=RID, district="青溪区"),
    F(name="陳麗", birth_date="1980-04-03", sex="2", phone="13700001243", street="文昌街道", address_line="翠湖3-2-501"),
    F(name="陈俐", birth_date="1980-03-04", sex="2", id_number=RID2, district="青溪区"),
    F(name="单丽", birth_date="1980-03-04", sex="1"),
    F(name="Shan Li", phone="13700001234"),
    F(name="陈王", birth_date="1981-03-04", district="青溪区", street="柳塘镇"),
    F(name="陈丽", birth_date="1980-03-14", sex="2", id_number=RID[:-3] + RID[-2] + RID[-3] + RID[-1]),
    F(name="张丽之子", sex="1", phone="13700001234", district="青溪区"),
    F(name=None),
]


@pytest.mark.slow
def test_scores_agree_with_splink_on_the_same_pairs():
    """A model trained by Splink (here: the shipped default, and one trained now on a small district)
    scores every pair exactly as Splink's own ``score_pairs`` does."""
    from onetrip.identity import splink_model

    rows, _ = demo_mpi.demo_rows(5, 2000)
    trained = splink_model.train(splink_model.frame(rows), max_pairs=5e5)
    for model_json in (default_model_json(), trained):
        model = matching.Model.from_splink(model_json)
        left = [{"unique_id": f"l{i}", **r.as_row()} for i, r in enumerate(RECORDS)]
        right = [{"unique_id": f"r{i}", **r.as_row()} for i, r in enumerate(RECORDS)]
        out = splink_model.score_pairs(model_json, left, right)
        assert len(out) == len(RECORDS) ** 2
        for row in out.itertuples():
            ours = matching.score(model, RECORDS[int(row.unique_id_l[1:])], RECORDS[int(row.unique_id_r[1:])])
            if math.isfinite(row.match_weight):
                assert abs(ours.match_weight - row.match_weight) < 1e-6
            assert abs(ours.match_probability - row.match_probability) < 1e-6


def test_exact_characters_score_above_pinyin_only():
    base = dict(birth_date="1980-03-04", sex="2")
    exact = matching.score(MODEL, F(name="陈丽", **base), F(name="陈丽", **base))
    homophone = matching.score(MODEL, F(name="陈丽", **base), F(name="陈莉", **base))
    pinyin_only = matching.score(MODEL, F(name="陈丽", **base), F(name="Chen Li", **base))
    assert exact.levels["name"] == "exact" and homophone.levels["name"] == "pinyin"
    assert pinyin_only.levels["name"] == "pinyin"
    assert exact.match_weight > homophone.match_weight == pinyin_only.match_weight


def test_traditional_and_surname_reading_levels():
    s = matching.score(MODEL, F(name="陈丽"), F(name="陳麗"))
    assert s.levels["name"] == "exact"  # t2s before comparing
    s = matching.score(MODEL, F(name="单丽"), F(name="Dan Li"))
    assert s.levels["name"] == "pinyin_alternative"  # 单 read as a surname is shan, otherwise dan
    s = matching.score(MODEL, F(name="吕伟"), F(name="Lyu Wei"))
    assert s.levels["name"] == "pinyin"


def test_day_month_swap_level():
    s = matching.score(MODEL, F(name="陈丽", birth_date="1980-03-04"), F(name="陈丽", birth_date="1980-04-03"))
    assert s.levels["birth_date"] == "day_month_swapped"


def test_different_valid_ids_are_never_linked_automatically():
    a, b = F(name="陈丽", id_number=RID), F(name="陈丽", id_number=RID2)
    assert matching.id_conflict(a, b)
    assert matching.decide(99.0, link_threshold=16, review_threshold=8, conflict=True) == matching.REVIEW
    assert matching.decide(99.0, link_threshold=16, review_threshold=8, conflict=False) == matching.LINK
    assert matching.decide(5.0, link_threshold=16, review_threshold=8, conflict=False) == matching.NEW


def test_grades():
    g = dict(link_threshold=16, review_threshold=8, possible_threshold=4)
    assert [matching.grade(w, **g) for w in (20, 10, 5, 1)] == ["certain", "probable", "possible", None]


def test_model_with_wrong_levels_is_refused():
    bad = default_model_json() | {"comparisons": [
        {**c, "comparison_levels": c["comparison_levels"][:2]} for c in default_model_json()["comparisons"]]}
    with pytest.raises(ValueError):
        matching.Model.from_splink(bad)


_names = st.sampled_from(["陈丽", "陳麗", "陈莉", "单丽", "Dan Li", "吕伟", "Lyu Wei", "张丽之子", "王玉", "王王", None])
_dates = st.one_of(st.none(), st.dates(dt.date(1930, 1, 1), dt.date(2025, 1, 1)).map(dt.date.isoformat))
_phones = st.sampled_from([None, "13700001234", "13700001243", "13912345678"])
_features = st.builds(F, name=_names, birth_date=_dates, sex=st.sampled_from([None, "1", "2", "0"]),
                      phone=_phones, id_number=st.sampled_from([None, RID, RID2]),
                      street=st.sampled_from([None, "文昌街道", "柳塘镇"]),
                      address_line=st.sampled_from([None, "翠湖小区3幢2单元501室", "翠湖3-2-501"]))


@settings(max_examples=300, deadline=None)
@given(_features, _features)
def test_matching_is_symmetric(a, b):
    assert matching.score(MODEL, a, b) == matching.score(MODEL, b, a)
    assert matching.id_conflict(a, b) == matching.id_conflict(b, a)
