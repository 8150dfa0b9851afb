"""FHIR Patient CRUD, versioning, conditional create and search — validated with fhir.resources."""

from __future__ import annotations

import datetime as dt

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from onetrip.identity.fhir import MRN_SYSTEM_PREFIX, RESIDENT_ID_SYSTEM, V2_0203
from onetrip.kit.identifiers import make_resident_id
from tests.factories import auth, token


def system_token(client, world) -> dict[str, str]:
    r = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": world.client_id,
                                         "client_secret": world.client_secret})
    assert r.status_code == 200, r.text
    return auth(r.json()["access_token"])

FHIR = "application/fhir+json"


def patient_json(org_id: str, mrn: str, name: str = "陈丽", id_number: str | None = None, **extra) -> dict:
    idents = [{"type": {"coding": [{"system": V2_0203, "code": "MR"}]}, "system": MRN_SYSTEM_PREFIX + "X",
               "value": mrn}]
    if id_number:
        idents.append({"type": {"coding": [{"system": V2_0203, "code": "NNCHN"}]}, "system": RESIDENT_ID_SYSTEM,
                       "value": id_number})
    body = {"resourceType": "Patient", "identifier": idents, "name": [{"use": "official", "text": name}],
            "gender": "female", "managingOrganization": {"reference": f"Organization/{org_id}"}}
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def doc_a(client, world):
    return auth(token(client, world.users["doc_a"]))


def test_create_read_update_vread_history_delete(client, world, doc_a):
    rid = make_resident_id("330281", dt.date(1986, 3, 9), 124)  # even → female
    body = patient_json(world.org_a, "A-1001", "陳麗", rid, birthDate="1986-03-09",
                        telecom=[{"system": "phone", "value": "13812345678"}])
    r = client.post("/fhir/R4/Patient", json=body, headers=doc_a)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith(FHIR)
    created = Patient.model_validate(r.json())
    assert created.name[0].text == "陈丽"  # traditional → simplified
    assert any(n.text == "chenli" for n in created.name)
    assert r.headers["ETag"] == 'W/"1"'
    assert "/_history/1" in r.headers["Location"]
    pid = created.id

    r = client.get(f"/fhir/R4/Patient/{pid}", headers=doc_a)
    assert r.status_code == 200
    read = Patient.model_validate(r.json())
    assert read.telecom[0].value == "+8613812345678"
    assert {i.value for i in read.identifier} == {"A-1001", rid}

    upd = r.json()
    upd["name"] = [{"use": "official", "text": "陈莉"}]
    r = client.put(f"/fhir/R4/Patient/{pid}", json=upd, headers={**doc_a, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["versionId"] == "2"

    # A stale If-Match is refused with 412 and an OperationOutcome.
    r = client.put(f"/fhir/R4/Patient/{pid}", json=upd, headers={**doc_a, "If-Match": 'W/"1"'})
    assert r.status_code == 412
    OperationOutcome.model_validate(r.json())

    r = client.get(f"/fhir/R4/Patient/{pid}/_history/1", headers=doc_a)
    assert r.status_code == 200 and r.json()["name"][0]["text"] == "陈丽"
    r = client.get(f"/fhir/R4/Patient/{pid}/_history", headers=doc_a)
    hist = Bundle.model_validate(r.json())
    assert hist.type == "history" and [e.response.etag for e in hist.entry] == ['W/"2"', 'W/"1"']

    # Clinicians' tokens carry no delete permission (user/Patient.crus); the registry system may delete.
    r = client.delete(f"/fhir/R4/Patient/{pid}", headers=doc_a)
    assert r.status_code == 403 and "Patient" in r.json()["issue"][0]["details"]["text"]
    r = client.delete(f"/fhir/R4/Patient/{pid}", headers=system_token(client, world))
    assert r.status_code == 204
    assert client.get(f"/fhir/R4/Patient/{pid}", headers=doc_a).status_code == 410


def test_search_by_identifier_pinyin_name_phone_and_paging(client, world, doc_a):
    rid = make_resident_id("330281", dt.date(1990, 7, 1), 312)
    for i, name in enumerate(["王芳", "王方", "汪芳"]):
        r = client.post("/fhir/R4/Patient", json=patient_json(
            world.org_a, f"S-{i}", name, rid if i == 0 else None, telecom=[{"system": "phone", "value": "13900001111"}]),
            headers=doc_a)
        assert r.status_code == 201, r.text
    b = Bundle.model_validate(client.get(f"/fhir/R4/Patient?identifier={rid}", headers=doc_a).json())
    assert [e.resource.name[0].text for e in b.entry] == ["王芳"]
    b = client.get("/fhir/R4/Patient", params={"identifier": f"{RESIDENT_ID_SYSTEM}|{rid}"}, headers=doc_a).json()
    assert len(b["entry"]) == 1
    b = client.get("/fhir/R4/Patient?name=wangfang", headers=doc_a).json()
    assert sorted(e["resource"]["name"][0]["text"] for e in b["entry"]) == ["汪芳", "王方", "王芳"]  # homophones
    b = client.get("/fhir/R4/Patient?name=王", headers=doc_a).json()
    assert len(b["entry"]) == 2
    b = client.get("/fhir/R4/Patient?phone=139-0000-1111&_count=2", headers=doc_a).json()
    Bundle.model_validate(b)
    assert len(b["entry"]) == 2
    nxt = [lk["url"] for lk in b["link"] if lk["relation"] == "next"]
    assert nxt, "a next link when more results exist"
    b2 = client.get(nxt[0].split("/fhir/R4")[1].join(["/fhir/R4", ""]), headers=doc_a).json()
    assert len(b2["entry"]) == 1
    b = client.get("/fhir/R4/Patient?gender=female&birthdate=ge2100-01-01", headers=doc_a).json()
    assert b.get("entry", []) == []


def test_conditional_create_is_idempotent(client, world, doc_a):
    rid = make_resident_id("330281", dt.date(1975, 1, 2), 17)  # odd → male
    body = patient_json(world.org_a, "C-1", "李强", rid)
    body["gender"] = "male"
    h = {**doc_a, "If-None-Exist": f"identifier={rid}"}
    first = client.post("/fhir/R4/Patient", json=body, headers=h)
    again = client.post("/fhir/R4/Patient", json=body, headers=h)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"resourceType": "Patient", "name": [{"text": "张三"}]}, "MRN"),
    ({"resourceType": "Observation"}, "resourceType"),
    ({"resourceType": "Patient", "gender": "bloke"}, "sex code"),
    ({"resourceType": "Patient", "birthDate": "1990-02-30"}, "birthDate"),
])
def test_invalid_resources_get_400_outcome(client, world, doc_a, body, fragment):
    if "gender" in body or "birthDate" in body:  # otherwise-valid patients with one bad field
        body = {**patient_json(world.org_a, "V-1"), **body}
    r = client.post("/fhir/R4/Patient", json=body, headers=doc_a)
    assert r.status_code == 400, r.text
    oo = OperationOutcome.model_validate(r.json())
    assert fragment.lower() in oo.issue[0].details.text.lower()


def test_bad_id_number_is_explained(client, world, doc_a):
    rid = make_resident_id("330281", dt.date(1986, 3, 9), 124)
    wrong = rid[:-1] + ("0" if rid[-1] != "0" else "1")
    r = client.post("/fhir/R4/Patient", json=patient_json(world.org_a, "B-1", "赵敏", wrong), headers=doc_a)
    assert r.status_code == 400
    assert "校验位" in r.text and "check character" in r.text
    r = client.post("/fhir/R4/Patient", json={**patient_json(world.org_a, "B-2", "赵敏", rid), "gender": "male"},
                    headers=doc_a)
    assert r.status_code == 400 and "sex does not match" in r.text


def test_malformed_json_unknown_type_bad_param(client, world, doc_a):
    r = client.post("/fhir/R4/Patient", content=b"{not json", headers={**doc_a, "Content-Type": FHIR})
    assert r.status_code == 400
    OperationOutcome.model_validate(r.json())
    r = client.get("/fhir/R4/Spaceship/1", headers=doc_a)
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    r = client.get("/fhir/R4/Patient?favourite_colour=blue", headers=doc_a)
    assert r.status_code == 400 and "favourite_colour" in r.text
    r = client.get("/fhir/R4/Patient?birthdate=yesterday", headers=doc_a)
    assert r.status_code == 400


def test_metadata_is_a_valid_capability_statement(client):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    r = client.get("/fhir/R4/metadata")
    cs = CapabilityStatement.model_validate(r.json())
    assert cs.fhirVersion == "4.0.1"
    assert {res.type for res in cs.rest[0].resource} >= {"Patient", "Organization", "Practitioner", "AuditEvent"}


def test_capability_statement_lists_every_resource_type_the_server_routes(app, client):
    """Each capability adds its own FHIR router; the CapabilityStatement must not fall behind them."""
    import re

    routed = set()
    for path in app.openapi()["paths"]:
        m = re.match(r"^/fhir/R4/([A-Z][A-Za-z]+)", path)
        if m:
            routed.add(m.group(1))
    listed = {res["type"] for res in client.get("/fhir/R4/metadata").json()["rest"][0]["resource"]}
    assert routed, "no FHIR routes found"
    assert routed <= listed, f"routed but not in /metadata: {sorted(routed - listed)}"
