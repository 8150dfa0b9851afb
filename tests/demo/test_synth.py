"""The synthetic district generator: pure, no database."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import pytest

from onetrip.demo.synth import AS_OF, HOME_AREA_CODE, RATES, District, generate_district
from onetrip.kit.identifiers import area_code_known, normalize_phone, parse_resident_id, validate_uscc
from onetrip.kit.names import normalize_name

N = 20_000


@pytest.fixture(scope="module")
def district() -> District:
    return generate_district(seed=42, residents=N)


@pytest.fixture(scope="module")
def residents(district):
    return list(district.iter_residents())


@pytest.fixture(scope="module")
def records(residents):
    return [rec for r in residents for rec in r.records]


def _snapshot(d: District, n: int):
    return d.organizations, d.departments, d.practitioners, list(itertools.islice(d.iter_residents(), n))


# -- determinism ------------------------------------------------------------------------------------


def test_same_seed_same_district():
    assert _snapshot(generate_district(7, 2_000), 2_000) == _snapshot(generate_district(7, 2_000), 2_000)


def test_iterating_twice_gives_the_same_residents():
    d = generate_district(7, 500)
    assert list(d.iter_residents()) == list(d.iter_residents())


def test_different_seed_differs():
    a, b = _snapshot(generate_district(1, 300), 300), _snapshot(generate_district(2, 300), 300)
    assert a[0] != b[0]  # credit codes, addresses, phones
    assert a[2] != b[2]
    assert [r.id_number for r in a[3]] != [r.id_number for r in b[3]]


def test_structure_does_not_depend_on_resident_count():
    small, large = generate_district(42, 10), generate_district(42, 5_000)
    assert small.organizations == large.organizations
    assert small.practitioners == large.practitioners
    assert list(small.iter_residents()) == list(itertools.islice(large.iter_residents(), 10))


def test_resident_count_is_exact():
    assert sum(1 for _ in generate_district(3, 1_234).iter_residents()) == 1_234
    assert list(generate_district(3, 0).iter_residents()) == []
    with pytest.raises(ValueError):
        generate_district(3, -1)


# -- institutions -----------------------------------------------------------------------------------


def test_organisation_counts_and_hierarchy(district):
    orgs = {o.code: o for o in district.organizations}
    assert len(orgs) == len(district.organizations)
    by_type = Counter(o.org_type for o in district.organizations)
    assert by_type["lead_hospital"] == 2
    assert by_type["lead_hospital"] + by_type["district_hospital"] == 6
    assert by_type["branch_centre"] == 12
    assert by_type["bureau"] == 1 and by_type["public_health"] == 1
    assert len(district.communities) == 2
    for c in district.communities:
        lead = orgs[c.lead_code]
        assert lead.org_type == "lead_hospital" and lead.community_code == c.code
        assert lead.grade in {"3A", "2A"}
        centres = [
            o for o in district.organizations if o.org_type == "branch_centre" and o.community_code == c.code
        ]
        assert len(centres) == 6
        assert all(o.parent_code == lead.code for o in centres)
        for centre in centres:
            stations = [o for o in district.organizations if o.parent_code == centre.code]
            assert 1 <= len(stations) <= 3
            assert all(s.org_type == "station" and s.community_code == c.code for s in stations)
    # parents are listed before their children (the loader relies on it for foreign keys)
    seen: set[str] = set()
    for o in district.organizations:
        assert o.parent_code is None or o.parent_code in seen
        seen.add(o.code)


def test_organisation_identifiers(district):
    usccs = [o.uscc for o in district.organizations]
    assert len(set(usccs)) == len(usccs)
    for o in district.organizations:
        assert validate_uscc(o.uscc) == o.uscc
        assert o.uscc[2:8] == HOME_AREA_CODE
        assert normalize_phone(o.phone) == o.phone
        assert o.code.isascii() and o.name_en.isascii()
        assert (o.licence_no is None) == (o.org_type in ("bureau", "public_health"))


def test_departments(district):
    by_org: dict[str, set[str]] = {}
    for dep in district.departments:
        by_org.setdefault(dep.org_code, set()).add(dep.name)
    for o in district.organizations:
        names = by_org[o.code]
        if o.org_type == "lead_hospital":
            assert {"内科", "外科", "儿科", "急诊科", "检验科", "基层科", "全科"} <= names
        elif o.org_type == "branch_centre":
            assert {"全科", "预防保健科", "公共卫生科"} <= names
        elif o.org_type == "station":
            assert names == {"全科"}
    assert len({(d.org_code, d.code) for d in district.departments}) == len(district.departments)


def test_practitioners(district):
    orgs = {o.code: o for o in district.organizations}
    staff = Counter(orgs[p.org_code].org_type for p in district.practitioners)
    per_org = Counter(p.org_code for p in district.practitioners)
    for o in district.organizations:
        n = per_org[o.code]
        expected = {"lead_hospital": (35, 45), "district_hospital": (30, 45), "branch_centre": (10, 14),
                    "station": (1, 3), "public_health": (5, 15), "bureau": (0, 0)}[o.org_type]  # fmt: skip
        assert expected[0] <= n <= expected[1], (o.code, n)
    assert staff["bureau"] == 0
    depts = {(d.org_code, d.code) for d in district.departments}
    for p in district.practitioners:
        assert p.qualification in {"physician", "nurse", "technician", "pharmacist"}
        assert p.department_code is None or (p.org_code, p.department_code) in depts
        assert p.practice_since <= AS_OF
        assert normalize_phone(p.phone) == p.phone
        assert 2 <= len(p.name) <= 4
    assert len({(p.org_code, p.staff_no) for p in district.practitioners}) == len(district.practitioners)


# -- residents --------------------------------------------------------------------------------------


def test_resident_ids_are_valid_and_unique(residents):
    assert len({r.id_number for r in residents}) == len(residents)
    for r in residents:
        parsed = parse_resident_id(
            r.id_number, expected_sex=r.sex, expected_birth_date=r.birth_date, today=AS_OF
        )
        assert parsed.number == r.id_number
        assert r.migrant == (r.id_number[:6] != HOME_AREA_CODE)
    assert area_code_known(HOME_AREA_CODE)
    migrants = sum(r.migrant for r in residents) / len(residents)
    assert 0.03 < migrants < 0.07


def test_age_pyramid(residents):
    ages = [(AS_OF - r.birth_date).days // 365.25 for r in residents]
    assert min(ages) >= 0 and max(ages) <= 96
    children = sum(a < 15 for a in ages) / len(ages)
    elderly = sum(a >= 60 for a in ages) / len(ages)
    assert 0.12 < children < 0.22
    assert 0.15 < elderly < 0.25
    assert sum(a >= 85 for a in ages) > 0


def test_names_look_chinese(residents):
    surnames = Counter(r.surname for r in residents)
    assert {s for s, _ in surnames.most_common(3)} == {"王", "李", "张"}
    for r in residents:
        assert r.name.startswith(r.surname) and 2 <= len(r.name) <= 4
        assert all("\u4e00" <= ch <= "\u9fff" for ch in r.name)


def test_phones(residents):
    missing = sum(r.phone is None for r in residents) / len(residents)
    assert 0.06 < missing < 0.14
    for r in residents:
        if r.phone:
            assert r.phone.startswith("+861") and normalize_phone(r.phone) == r.phone


def test_addresses_and_home_centre(district, residents):
    centre_of = {s.name: s.centre_code for s in district.streets}
    for r in residents:
        assert r.home_centre == centre_of[r.street]
        assert r.province and r.city and r.district == district.name and r.address_line


# -- records ----------------------------------------------------------------------------------------


def test_record_coverage(district, residents, records):
    orgs = {o.code: o for o in district.organizations}
    at_home = sum(any(rec.org_code == r.home_centre for rec in r.records) for r in residents) / len(residents)
    at_hospital = sum(
        any(orgs[rec.org_code].org_type in ("lead_hospital", "district_hospital") for rec in r.records)
        for r in residents
    ) / len(residents)
    at_station = sum(any(orgs[rec.org_code].org_type == "station" for rec in r.records) for r in residents)
    assert 0.87 < at_home < 0.93
    assert 0.33 < at_hospital < 0.47
    assert at_station > 0.05 * len(residents)
    for r in residents:
        assert len({rec.org_code for rec in r.records}) == len(r.records)  # one record per institution
        assert all(rec.resident_index == r.index for rec in r.records)
        station_codes = [rec.org_code for rec in r.records if orgs[rec.org_code].org_type == "station"]
        assert all(orgs[c].parent_code == r.home_centre for c in station_codes)


def test_mrns_unique_per_org(records):
    assert len({(rec.org_code, rec.mrn) for rec in records}) == len(records)


def test_record_ids_are_the_residents_id(residents):
    for r in residents:
        for rec in r.records:
            if rec.id_number is None:
                assert "id_missing" in rec.errors
            elif len(rec.id_number) == 15:
                assert "id_15" in rec.errors and r.birth_date.year < 2000
                parsed = parse_resident_id(rec.id_number)
                assert parsed.converted_from_15 and parsed.number == r.id_number
            else:
                assert rec.id_number == r.id_number


def test_record_phones_are_valid(records):
    for rec in records:
        if rec.phone:
            assert normalize_phone(rec.phone) == rec.phone


def _rate(records, flag, where=lambda rec: True):
    pool = [rec for rec in records if where(rec)]
    return sum(flag in rec.errors for rec in pool) / len(pool)


@pytest.mark.parametrize(
    ("flag", "low", "high"),
    [
        ("id_missing", 0.07, 0.09),
        ("id_15", 0.006, 0.013),
        ("birth_date_miskeyed", 0.007, 0.013),
        ("name_traditional", 0.015, 0.025),
        ("name_homophone", 0.015, 0.025),
        ("phone_transposed", 0.011, 0.02),
        ("phone_family", 0.009, 0.02),
        ("address_variant", 0.043, 0.057),
    ],
)
def test_error_rates_overall(records, flag, low, high):
    assert low <= _rate(records, flag) <= high


def test_conditional_error_rates(residents, records):
    born_before_2000 = {r.index for r in residents if r.birth_date < dt.date(2000, 1, 1)}

    def id_given_born_before_2000(rec):
        return rec.resident_index in born_before_2000 and rec.id_number is not None

    assert abs(_rate(records, "id_15", id_given_born_before_2000) - RATES["id_15"]) < 0.004
    no_id = lambda rec: rec.id_number is None  # noqa: E731
    assert abs(_rate(records, "birth_date_miskeyed", no_id) - RATES["birth_date_miskeyed"]) < 0.03
    station = lambda rec: rec.org_code.startswith("ST")  # noqa: E731
    assert 0.001 <= _rate(records, "name_pinyin", station) <= 0.012
    assert all(rec.org_code.startswith("ST") for rec in records if "name_pinyin" in rec.errors)


def test_errors_do_what_they_say(residents):
    for r in residents:
        for rec in r.records:
            errs = set(rec.errors)
            if "name_traditional" in errs:
                assert rec.name != r.name
            elif "name_homophone" in errs:
                assert rec.name != r.name and len(rec.name) == len(r.name) and rec.name.startswith(r.surname)
            elif "name_pinyin" in errs:
                assert rec.name.isascii() and " " in rec.name
            else:
                assert rec.name == r.name
            assert (rec.birth_date != r.birth_date) == ("birth_date_miskeyed" in errs)
            if "birth_date_miskeyed" in errs:
                assert rec.id_number is None and rec.birth_date <= AS_OF
            if "phone_transposed" in errs or "phone_family" in errs:
                assert rec.phone != r.phone and rec.phone is not None
            else:
                assert rec.phone == r.phone
            changed = (rec.province, rec.city, rec.district, rec.street, rec.address_line) != (
                r.province, r.city, r.district, r.street, r.address_line
            )  # fmt: skip
            assert changed == ("address_variant" in errs)
            assert rec.sex == r.sex


def test_traditional_names_normalise_back(residents):
    pairs = [(rec.name, r.name) for r in residents for rec in r.records if "name_traditional" in rec.errors]
    assert pairs
    back = sum(normalize_name(trad) == simp for trad, simp in pairs) / len(pairs)
    assert back > 0.95
