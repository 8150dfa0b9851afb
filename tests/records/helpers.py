"""FHIR bodies for the records tests."""

from __future__ import annotations

import datetime as dt
import uuid

from onetrip.identity.fhir import MRN_SYSTEM_PREFIX, RESIDENT_ID_SYSTEM, V2_0203

LIS = "urn:oid:2.16.156.99.1.lis"  # a sender's report-number system


def ago(days: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")


def uid() -> str:
    return uuid.uuid4().hex[:12]


def observation(patient_ref: str, *, code="2345-7", value=5.6, days=1.0, ident=None, org=None) -> dict:
    body = {"resourceType": "Observation", "status": "final",
            "identifier": [{"system": LIS + ".obs", "value": ident or uid()}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": "Glucose"},
                                {"system": "urn:onetrip:cs:local", "code": "GLU"}], "text": "葡萄糖"},
            "subject": {"reference": patient_ref}, "effectiveDateTime": ago(days),
            "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                              "code": "mmol/L"},
            "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}]}
    if org:
        body["performer"] = [{"reference": f"Organization/{org}"}]
    return body


def report(patient_ref: str, *, category="CH", code="24323-8", days=1.0, ident=None, org=None,
           conclusion="未见明显异常", mark="浙HR", results=()) -> dict:
    body = {"resourceType": "DiagnosticReport", "status": "final",
            "identifier": [{"system": LIS, "value": ident or uid()}],
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": category}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "综合代谢检查"},
            "subject": {"reference": patient_ref}, "effectiveDateTime": ago(days), "issued": ago(days),
            "conclusion": conclusion,
            "extension": [{"url": "urn:onetrip:sd:recognition-mark", "valueString": mark}],
            "result": [{"reference": r} for r in results]}
    if org:
        body["performer"] = [{"reference": f"Organization/{org}"}]
    if not results:
        del body["result"]
    return body


def patient(org_id: str, org_code: str, id_number: str, name: str = "王建国", mrn: str | None = None) -> dict:
    return {"resourceType": "Patient",
            "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "MR"}]},
                            "system": MRN_SYSTEM_PREFIX + org_code, "value": mrn or "M" + uid()},
                           {"type": {"coding": [{"system": V2_0203, "code": "NNCHN"}]},
                            "system": RESIDENT_ID_SYSTEM, "value": id_number}],
            "name": [{"text": name}], "gender": "male", "birthDate": f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}",
            "managingOrganization": {"reference": f"Organization/{org_id}"}}


def entry(resource: dict, full_url: str | None = None, if_none_exist: str | None = None) -> dict:
    req = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        req["ifNoneExist"] = if_none_exist
    return {"fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}", "resource": resource, "request": req}
