"""POST /fhir/R4/Practitioner and /Organization with the minimal bodies the OpenAPI document describes, and
the bounds it declares: the same answer on SQLite and PostgreSQL (issue 26, point 7)."""

from __future__ import annotations

from tests.factories import auth, token

FHIR = "application/fhir+json"


def _post(client, world, name: str):
    headers = {**auth(token(client, world.users["admin"])), "Content-Type": FHIR}
    body = {"resourceType": "Practitioner", "name": [{"text": name}]}
    return client.post("/fhir/R4/Practitioner", json=body, headers=headers)


def test_a_name_is_enough(client, world):
    r = _post(client, world, "王建国")
    assert r.status_code == 201, r.text
    assert r.json()["name"][0]["text"] == "王建国"


def test_a_long_chinese_name_is_stored_and_found_by_pinyin(client, world):
    """64 characters of pinyin-heavy 汉字: the pinyin key (wider than the name) is cut to its column, not
    refused by PostgreSQL as a 400 'cannot be stored'."""
    name = "壮" * 64  # zhuang × 64 = 384 letters of pinyin
    r = _post(client, world, name)
    assert r.status_code == 201, r.text
    found = client.get("/fhir/R4/Practitioner", params={"name": "zhuangzhuang"},
                       headers=auth(token(client, world.users["admin"])))
    assert found.status_code == 200, found.text
    assert any(e["resource"]["id"] == r.json()["id"] for e in found.json().get("entry", []))


def test_a_name_longer_than_its_column_is_a_400_on_both_databases(client, world):
    r = _post(client, world, "名" * 65)
    assert r.status_code == 400, r.text
    assert "64" in r.json()["issue"][0]["details"]["text"]


def _org(client, world, code: str, name: str = "测试卫生院", if_none_exist: str | None = None):
    headers = {**auth(token(client, world.users["admin"])), "Content-Type": FHIR}
    if if_none_exist is not None:
        headers["If-None-Exist"] = if_none_exist
    body = {"resourceType": "Organization", "name": name,
            "identifier": [{"system": "urn:onetrip:sid:org-code", "value": code}],
            "type": [{"coding": [{"system": "urn:onetrip:cs:org-type", "code": "station"}]}]}
    return client.post("/fhir/R4/Organization", json=body, headers=headers)


def test_an_organization_with_code_name_and_type(client, world):
    r = _org(client, world, "ST-9")
    assert r.status_code == 201, r.text


def test_organization_code_and_name_longer_than_their_columns_are_400(client, world):
    r = _org(client, world, "A" * 33)
    assert r.status_code == 400 and "32" in r.json()["issue"][0]["details"]["text"], r.text
    r = _org(client, world, "ST-10", name="院" * 129)
    assert r.status_code == 400 and "128" in r.json()["issue"][0]["details"]["text"], r.text


def test_if_none_exist_without_criteria_is_a_400_not_a_match_of_everything(client, world):
    """'x' names no search parameter: it used to search all institutions and answer 412 (several matched)."""
    r = _org(client, world, "ST-11", if_none_exist="x")
    assert r.status_code == 400, r.text
    assert "If-None-Exist" in r.json()["issue"][0]["details"]["text"]
    again = _org(client, world, "ST-11", if_none_exist="identifier=urn:onetrip:sid:org-code|ST-11")
    assert again.status_code == 201, again.text
    same = _org(client, world, "ST-11", if_none_exist="identifier=urn:onetrip:sid:org-code|ST-11")
    assert same.status_code == 200 and same.json()["id"] == again.json()["id"], same.text
