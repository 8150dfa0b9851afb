"""The master patient index service (issue 3): online matching on every patient write, the review queue,
link / merge / unmerge with full history, remembered not-a-match decisions.

Services flush, never commit. Every decision is audited (``audit.record``) and every change of a record's
person emits an outbox event (``person.linked``, ``person.merged``, ``person.unmerged``) so records,
referrals and indicators can follow. The arithmetic is in ``matching`` (pure); thresholds come from the
``mpi`` rule set.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.identity import mapping as patient_fhir
from onetrip.identity import matching
from onetrip.identity import repository as repo
from onetrip.identity.models import MatchModel, MatchReview, NotAMatch, PersonMerge
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import BadRequest, Conflict, NotFound
from onetrip.kit.names import name_pinyin
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord, Person
from onetrip.rules.service import rule_values

PERSON_FIELDS = ("id_number", "name", "name_pinyin", "sex", "birth_date", "phone", "province", "city",
                 "district", "street", "address_line", "deceased", "merged_into_id")
RECORD_FIELDS = ("person_id", "link_method", "active", "replaced_by_id")
DEFAULT_THRESHOLDS = {"link_threshold": 16.0, "review_threshold": 8.0, "possible_threshold": 4.0,
                      "max_candidates": 200, "max_review_items": 3}


# --- model and thresholds ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def default_model_json() -> dict:
    return json.loads(resources.files("onetrip.identity").joinpath("default_model.json").read_text("utf-8"))


_MODELS: dict[str, matching.Model] = {}


def current_model(session: Session) -> matching.Model:
    """The newest active trained model in ``match_model``; the packaged default when there is none.
    Parsed once per version (model rows are never edited, only added)."""
    row = session.execute(select(MatchModel.id, MatchModel.version).where(MatchModel.active.is_(True))
                          .order_by(MatchModel.version.desc()).limit(1)).first()
    key = row.id if row is not None else "default"
    if key not in _MODELS:
        if row is None:
            raw, version = default_model_json(), "default"
        else:
            raw, version = session.get(MatchModel, row.id).model, f"v{row.version}"
        if len(_MODELS) > 16:
            _MODELS.clear()
        _MODELS[key] = matching.Model.from_splink(raw, version).ensure_ordering()
    return _MODELS[key]


def save_model(session: Session, model_json: dict, *, by: str, training: dict) -> MatchModel:
    """A new model version (the previous ones stay, inactive history is kept)."""
    matching.Model.from_splink(model_json)  # refuses a model whose comparisons do not fit ours
    version = (session.scalar(select(func.max(MatchModel.version))) or 0) + 1
    row = MatchModel(version=version, created_by=by, active=True, model=model_json, training=training)
    session.add(row)
    session.flush()
    return row


def thresholds(session: Session) -> dict[str, float]:
    values = {**DEFAULT_THRESHOLDS, **rule_values(session, "mpi")}
    return {k: float(v) for k, v in values.items()}  # type: ignore[arg-type]


# --- online matching --------------------------------------------------------------------------------------


def features_of(obj) -> matching.Features:
    """Features of a PatientRecord, Person or CleanPatient-like object with the usual attribute names."""
    return matching.features(name=obj.name, birth_date=obj.birth_date, sex=obj.sex,
                             id_number=obj.id_number, phone=obj.phone, district=getattr(obj, "district", None),
                             street=getattr(obj, "street", None), address_line=getattr(obj, "address_line", None))


def stored_features_of(r: PatientRecord) -> matching.Features:
    """Features of a stored record (already validated on write: no re-parsing)."""
    return matching.stored_features(name=r.name, birth_date=r.birth_date, sex=r.sex, id_number=r.id_number,
                                    phone=r.phone, district=r.district, street=r.street,
                                    address_line=r.address_line)


@dataclass
class Candidate:
    person_id: str
    record: PatientRecord
    score: matching.Score
    conflict: bool  # different valid resident IDs (M2)


def _pinyin_keys(f: matching.Features) -> list[str]:
    keys = set(f.pinyin_alts)
    if f.name:
        keys.add(name_pinyin(f.name))
    keys |= {k.replace("lu", "lv").replace("nu", "nv") for k in list(keys)}
    return sorted(keys)


def find_candidates(session: Session, f: matching.Features, *, model: matching.Model | None = None,
                    limit: int = 200, exclude_record_id: str | None = None,
                    exclude_person_id: str | None = None) -> list[Candidate]:
    """Candidate persons by blocking keys, each scored by its best-matching record, best first."""
    model = model or current_model(session)
    birth = dt.date.fromisoformat(f.birth_date) if f.birth_date else None
    rows = repo.mpi_candidates(session, id_number=f.id_number, phone=f.phone, pinyin_keys=_pinyin_keys(f),
                               birth_date=birth, sex=f.sex, district=f.district, limit=int(limit),
                               exclude_record_id=exclude_record_id)
    best: dict[str, Candidate] = {}
    persons = repo.persons_by_ids(session, list({r.person_id for r in rows if r.person_id != exclude_person_id}))
    for r in rows:
        person = persons.get(r.person_id)
        if person is None or person.merged_into_id is not None:
            continue
        rf = stored_features_of(r)
        s = matching.score(model, f, rf)
        conflict = matching.id_conflict(f.id_number, person.id_number) or matching.id_conflict(f, rf)
        cur = best.get(r.person_id)
        if cur is None or s.match_weight > cur.score.match_weight:
            best[r.person_id] = Candidate(r.person_id, r, s, conflict)
        elif conflict:
            cur.conflict = True
    return sorted(best.values(), key=lambda c: (-c.score.match_weight, c.person_id))


@dataclass
class OnlineMatch:
    decision: str  # matching.LINK | REVIEW | NEW
    person: Person | None  # the person to link to (LINK)
    candidates: list[Candidate]
    model_version: str


def match_online(session: Session, f: matching.Features, *, exclude_record_id: str | None = None,
                 exclude_person_id: str | None = None, lock: bool = True) -> OnlineMatch:
    """Issue 3 §2: score the candidates of a registration and decide link / review / new (M2, M3).
    With ``lock`` the registration's blocking keys are locked until commit, so a concurrent registration
    of the same new resident waits and then finds this one."""
    if lock:
        keys = [k for k in (f.id_number, f.phone) if k]
        if f.pinyin and f.birth_date:
            keys.append(f"{f.pinyin}|{f.birth_date}")
        repo.lock_blocking_keys(session, keys)
    t = thresholds(session)
    model = current_model(session)
    cands = find_candidates(session, f, model=model, limit=t["max_candidates"],
                            exclude_record_id=exclude_record_id, exclude_person_id=exclude_person_id)
    if exclude_person_id and cands:
        refused = repo.not_a_match_pairs(session, exclude_person_id, [c.person_id for c in cands])
        cands = [c for c in cands if c.person_id not in refused]
    if not cands:
        return OnlineMatch(matching.NEW, None, [], model.version)
    top = cands[0]
    decision = matching.decide(top.score.match_weight, link_threshold=t["link_threshold"],
                               review_threshold=t["review_threshold"], conflict=top.conflict)
    if decision == matching.LINK and any(c.score.match_weight >= t["link_threshold"] and not c.conflict
                                         for c in cands[1:]):
        decision = matching.REVIEW  # two persons both certain: a human decides (and may merge them)
    person = session.get(Person, top.person_id) if decision == matching.LINK else None
    return OnlineMatch(decision, person, cands, model.version)


def queue_reviews(session: Session, rec: PatientRecord, match: OnlineMatch, *, source: str) -> list[MatchReview]:
    """Review items for the candidates at or above the review threshold (best first, capped), skipping
    pairs remembered as not-a-match and pairs already queued."""
    t = thresholds(session)
    wanted = [c for c in match.candidates
              if c.person_id != rec.person_id and c.score.match_weight >= t["review_threshold"]]
    refused = repo.not_a_match_pairs(session, rec.person_id, [c.person_id for c in wanted])
    items = []
    for c in wanted:
        if len(items) >= int(t["max_review_items"]):
            break
        if c.person_id in refused:
            continue
        exists = session.scalar(select(MatchReview).where(MatchReview.record_id == rec.id,
                                                          MatchReview.candidate_person_id == c.person_id))
        if exists is not None:
            continue
        item = MatchReview(person_id=rec.person_id, record_id=rec.id, candidate_person_id=c.person_id,
                           candidate_record_id=c.record.id, match_weight=c.score.match_weight,
                           match_probability=c.score.match_probability, levels=c.score.levels, source=source,
                           model_version=match.model_version, status="open")
        session.add(item)
        items.append(item)
    session.flush()
    return items


# --- review queue -----------------------------------------------------------------------------------------


def list_review_items(session: Session, *, status: str = "open", limit: int = 50, offset: int = 0) -> list[MatchReview]:
    """The review queue, oldest first."""
    return list(session.scalars(select(MatchReview).where(MatchReview.status == status)
                                .order_by(MatchReview.created_at, MatchReview.id).offset(offset).limit(limit)))


@dataclass
class FieldComparison:
    field: str
    left: object
    right: object
    agrees: bool | None  # None = one side missing
    level: str | None
    weight: float | None


@dataclass
class Comparison:
    item: MatchReview
    left: PatientRecord
    right: PatientRecord
    match_weight: float
    match_probability: float
    fields: list[FieldComparison]


_COMPARED = (("name", "name"), ("birth_date", "birth_date"), ("sex", "sex"), ("id_number", "id_number"),
             ("phone", "phone"), ("address", "address_line"))


def compare(session: Session, principal: Principal, item_id: str) -> Comparison:
    """Side by side: the fields that agree and disagree, the level and weight of each, the score now
    (with the current model). An audited read of both persons."""
    item = _item(session, item_id)
    left = session.get(PatientRecord, item.record_id)
    right = session.get(PatientRecord, item.candidate_record_id) if item.candidate_record_id else None
    if right is None:
        right = repo.records_of_person(session, item.candidate_person_id)[0]
    a, b = features_of(left), features_of(right)
    s = matching.score(current_model(session), a, b)
    fields = []
    for comp, attr in _COMPARED:
        lv, rv = getattr(left, attr), getattr(right, attr)
        if comp == "address":
            lv = " ".join(x for x in (left.street, left.address_line) if x) or None
            rv = " ".join(x for x in (right.street, right.address_line) if x) or None
        label = s.levels[comp]
        agrees = None if label == "null" else label in ("exact", "same_house")
        fields.append(FieldComparison(comp, lv, rv, agrees, label, s.partial[comp]))
    audit.record(session, principal, "read", person_ids=[left.person_id, right.person_id],
                 what=[f"Patient/{left.id}", f"Patient/{right.id}"], detail={"mpi": "compare", "review": item.id})
    return Comparison(item, left, right, s.match_weight, s.match_probability, fields)


def _item(session: Session, item_id: str) -> MatchReview:
    item = session.get(MatchReview, item_id)
    if item is None:
        raise NotFound("复核项不存在 / review item not found")
    return item


def decide(session: Session, principal: Principal, item_id: str, decision: str, *, reason: str | None = None) -> MatchReview:
    """A reviewer's decision on an open item: ``link`` (this record joins the candidate person),
    ``merge`` (all of this record's person joins the candidate person) or ``not_a_match`` (remembered;
    the pair is never proposed again). Audited; link and merge emit events and can be undone (unmerge)."""
    item = _item(session, item_id)
    if item.status != "open":
        raise Conflict(f"复核项已处理（{item.status}）/ review item already decided ({item.status})")
    who = _actor(principal)
    if decision == "not_a_match":
        remember_not_a_match(session, principal, item.person_id, item.candidate_person_id, review_id=item.id)
        item.status = "not_a_match"
    elif decision == "link":
        m = link_record(session, principal, item.record_id, item.candidate_person_id, reason=reason or "review")
        item.status, item.merge_id = "linked", m.id
    elif decision == "merge":
        m = merge_persons(session, principal, item.candidate_person_id, item.person_id, reason=reason or "review")
        item.status, item.merge_id = "merged", m.id
    else:
        raise BadRequest(f"未知决定 {decision!r} / unknown decision (link, merge or not_a_match)",
                         expression=["decision"])
    item.decided_by, item.decided_at = who, utcnow()
    # Other open items about the same pair are settled by this decision.
    for other in session.scalars(select(MatchReview).where(
            MatchReview.status == "open", MatchReview.id != item.id,
            MatchReview.person_id == item.person_id, MatchReview.candidate_person_id == item.candidate_person_id)):
        other.status, other.decided_by, other.decided_at = "closed", who, utcnow()
    session.flush()
    return item


def remember_not_a_match(session: Session, principal: Principal, a: str, b: str, *, review_id: str | None = None) -> NotAMatch:
    lo, hi = sorted((a, b))
    row = session.scalar(select(NotAMatch).where(NotAMatch.person_id == lo, NotAMatch.other_person_id == hi))
    if row is None:
        row = NotAMatch(person_id=lo, other_person_id=hi, review_id=review_id,
                        decided_by=_actor(principal))
        session.add(row)
        session.flush()
    audit.record(session, principal, "update", person_ids=[lo, hi], what=[f"Person/{lo}", f"Person/{hi}"],
                 detail={"mpi": "not_a_match", "review": review_id})
    return row


# --- link, merge, unmerge ---------------------------------------------------------------------------------


def _person_state(p: Person) -> dict:
    return {f: (getattr(p, f).isoformat() if isinstance(getattr(p, f), dt.date) else getattr(p, f))
            for f in PERSON_FIELDS}


def _apply_person_state(p: Person, state: dict) -> None:
    for f in PERSON_FIELDS:
        v = state[f]
        if f == "birth_date" and v is not None:
            v = dt.date.fromisoformat(v)
        setattr(p, f, v)


def _record_state(r: PatientRecord) -> dict:
    return {f: getattr(r, f) for f in RECORD_FIELDS}


def _fill_gaps(into: Person, source: Person) -> None:
    """The surviving person keeps its values; gaps are filled from the other (never the ID: see callers)."""
    for f in ("phone", "birth_date", "province", "city", "district", "street", "address_line"):
        if not getattr(into, f) and getattr(source, f):
            setattr(into, f, getattr(source, f))
    if into.sex in ("0", "9") and source.sex in ("1", "2"):
        into.sex = source.sex


def _move_id_number(session: Session, into: Person, source: Person) -> None:
    """person.id_number is unique: clear it on the source first, then set it on the survivor."""
    if source.id_number and not into.id_number:
        number = source.id_number
        source.id_number = None
        session.flush()
        into.id_number = number


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.name}"[:64]


def link_record(session: Session, principal: Principal, record_id: str, to_person_id: str, *,
                reason: str | None = None, method: str = "manual") -> PersonMerge:
    """One record joins another person. If its old person is left without records, that person is marked
    merged into the new one. Never across different valid resident IDs (M2 → 409)."""
    rec = session.get(PatientRecord, record_id, with_for_update=True)
    to = session.get(Person, to_person_id, with_for_update=True)
    if rec is None or to is None:
        raise NotFound("记录或居民不存在 / record or person not found")
    if rec.person_id == to.id:
        raise Conflict("记录已属于该居民 / the record already belongs to this person")
    if to.merged_into_id:
        raise Conflict("目标居民已被合并 / the target person was merged into another")
    if matching.id_conflict(rec.id_number, to.id_number):
        raise Conflict("身份证号不同，不能关联 / different resident ID numbers: cannot link")
    src = session.get(Person, rec.person_id, with_for_update=True)
    others = [r for r in repo.records_of_person(session, src.id) if r.id != rec.id]
    before = {"persons": {src.id: _person_state(src), to.id: _person_state(to)},
              "records": {rec.id: _record_state(rec)}}
    rec.person_id, rec.link_method = to.id, method
    if not others:
        _move_id_number(session, to, src)
        _fill_gaps(to, src)
        src.merged_into_id = to.id
    elif rec.id_number and src.id_number == rec.id_number and not any(o.id_number == rec.id_number for o in others):
        src.id_number = None  # the ID travels with the only record that carried it
        session.flush()
        to.id_number = to.id_number or rec.id_number
    session.flush()
    m = PersonMerge(person_id=to.id, merged_person_id=src.id, kind="link", before=before, reason=reason,
                    merged_by=_actor(principal))
    session.add(m)
    session.flush()
    patient_fhir.snapshot_patient(session, rec, "PUT")
    audit.record(session, principal, "update", person_ids=[src.id, to.id], what=[f"Patient/{rec.id}"] * 2,
                 detail={"mpi": "link", "merge": m.id, "from": src.id, "to": to.id})
    record_event(session, "person.linked", "Patient", rec.id,
                 {"record_id": rec.id, "from_person_id": src.id, "to_person_id": to.id, "merge_id": m.id},
                 person_id=to.id)
    return m


def merge_persons(session: Session, principal: Principal, survivor_id: str, merged_id: str, *,
                  reason: str | None = None) -> PersonMerge:
    """All records of ``merged_id`` join ``survivor_id``; the merged person is kept with
    ``merged_into_id`` (FHIR replaced-by). Duplicate registrations at the same institution are
    deactivated and point at the surviving record (``replaced_by_id``). Reversible with ``unmerge``."""
    if survivor_id == merged_id:
        raise BadRequest("不能与自身合并 / cannot merge a person with itself")
    survivor = session.get(Person, survivor_id, with_for_update=True)
    merged = session.get(Person, merged_id, with_for_update=True)
    if survivor is None or merged is None:
        raise NotFound("居民不存在 / person not found")
    if survivor.merged_into_id or merged.merged_into_id:
        raise Conflict("居民已被合并 / a person in this merge was already merged")
    if matching.id_conflict(survivor.id_number, merged.id_number):
        raise Conflict("身份证号不同，不能合并 / different resident ID numbers: cannot merge")
    moving = repo.records_of_person(session, merged.id)
    staying = {r.organization_id: r for r in repo.records_of_person(session, survivor.id)
               if r.deleted_at is None and r.replaced_by_id is None}
    before = {"persons": {survivor.id: _person_state(survivor), merged.id: _person_state(merged)},
              "records": {r.id: _record_state(r) for r in moving}}
    for r in moving:
        r.person_id, r.link_method = survivor.id, "manual"
        twin = staying.get(r.organization_id)
        if twin is not None and r.deleted_at is None:
            r.active, r.replaced_by_id = False, twin.id
    _move_id_number(session, survivor, merged)
    _fill_gaps(survivor, merged)
    merged.merged_into_id = survivor.id
    session.flush()
    m = PersonMerge(person_id=survivor.id, merged_person_id=merged.id, kind="merge", before=before,
                    reason=reason, merged_by=_actor(principal))
    session.add(m)
    session.flush()
    for r in moving:
        patient_fhir.snapshot_patient(session, r, "PUT")
    audit.record(session, principal, "update", person_ids=[survivor.id, merged.id],
                 what=[f"Person/{survivor.id}", f"Person/{merged.id}"],
                 detail={"mpi": "merge", "merge": m.id, "survivor": survivor.id, "merged": merged.id})
    record_event(session, "person.merged", "Person", merged.id,
                 {"survivor_person_id": survivor.id, "merged_person_id": merged.id, "merge_id": m.id,
                  "record_ids": [r.id for r in moving]}, person_id=survivor.id)
    return m


def unmerge(session: Session, principal: Principal, merge_id: str) -> PersonMerge:
    """Undo a link or merge: the persons and records get back exactly the values they had before.
    Only the newest active merge touching these persons can be undone (undo later ones first)."""
    m = session.get(PersonMerge, merge_id, with_for_update=True)
    if m is None:
        raise NotFound("合并记录不存在 / merge not found")
    if m.status != "active":
        raise Conflict("该合并已撤销 / this merge was already undone")
    later = session.scalars(select(PersonMerge).where(
        PersonMerge.status == "active", PersonMerge.id != m.id, PersonMerge.merged_at >= m.merged_at,
        (PersonMerge.person_id.in_([m.person_id, m.merged_person_id]))
        | (PersonMerge.merged_person_id.in_([m.person_id, m.merged_person_id])))).all()
    later = [x for x in later if x.merged_at > m.merged_at]
    if later:
        raise Conflict("请先撤销之后的合并 / undo the later merges of these persons first",
                       expression=[x.id for x in later])
    persons = {pid: session.get(Person, pid, with_for_update=True) for pid in m.before["persons"]}
    # The unique resident ID: clear every ID first, then restore, so no intermediate state collides.
    for p in persons.values():
        p.id_number = None
    session.flush()
    for pid, state in m.before["persons"].items():
        _apply_person_state(persons[pid], state)
    records = []
    for rid, state in m.before["records"].items():
        r = session.get(PatientRecord, rid, with_for_update=True)
        for f in RECORD_FIELDS:
            setattr(r, f, state[f])
        records.append(r)
    m.status, m.unmerged_by, m.unmerged_at = "undone", _actor(principal), utcnow()
    for item in session.scalars(select(MatchReview).where(MatchReview.merge_id == m.id)):
        item.status, item.merge_id = "open", None  # the decision was undone: back in the queue
    session.flush()
    for r in records:
        patient_fhir.snapshot_patient(session, r, "PUT")
    audit.record(session, principal, "update", person_ids=list(persons), what=[f"Person/{p}" for p in persons],
                 detail={"mpi": "unmerge", "merge": m.id})
    record_event(session, "person.unmerged", "Person", m.merged_person_id,
                 {"survivor_person_id": m.person_id, "merged_person_id": m.merged_person_id, "merge_id": m.id,
                  "record_ids": [r.id for r in records]}, person_id=m.merged_person_id)
    return m


def surviving_person_id(session: Session, person_id: str) -> str:
    """Follow merged_into_id to the person that now stands for ``person_id``."""
    seen = set()
    p = session.get(Person, person_id)
    while p is not None and p.merged_into_id and p.id not in seen:
        seen.add(p.id)
        p = session.get(Person, p.merged_into_id)
    return p.id if p is not None else person_id


# --- $match -----------------------------------------------------------------------------------------------


@dataclass
class MatchResult:
    record: PatientRecord
    score: matching.Score
    grade: str  # certain | probable | possible


def match_patient(session: Session, principal: Principal, f: matching.Features, *, only_certain: bool = False,
                  count: int = 10, query: str = "Patient/$match") -> list[MatchResult]:
    """FHIR ``Patient/$match``: scored candidates the caller may see, best first, graded by the ``mpi``
    thresholds. Visibility is the search rule (own institution's records, others' only where the access
    policy permits); one audit event per patient returned, like a search."""
    from onetrip.access import service as access

    t = thresholds(session)
    results: list[MatchResult] = []
    cands = find_candidates(session, f, limit=t["max_candidates"])
    graded = []
    for c in cands:
        g = matching.grade(c.score.match_weight, link_threshold=t["link_threshold"],
                           review_threshold=t["review_threshold"], possible_threshold=t["possible_threshold"])
        if g == "certain" and c.conflict:
            g = "probable"  # M2: different valid IDs are never certain
        if g is None or (only_certain and g != "certain"):
            continue
        graded.append((c, g))
    if graded and not principal.is_operator:
        own = principal.organization_id
        elsewhere = [c.person_id for c, _ in graded if c.record.organization_id != own]
        allowed = access.decisions(session, principal, elsewhere) if elsewhere else {}
        visible = []
        for c, g in graded:
            if c.record.organization_id == own:
                visible.append((c, g))
                continue
            if not allowed[c.person_id].allowed:
                continue
            visible.append((c, g))
        graded = visible
    for c, g in graded[:count]:
        results.append(MatchResult(c.record, c.score, g))
    if results:
        audit.record(session, principal, "search-type", person_ids=[r.record.person_id for r in results],
                     what=[f"Patient/{r.record.id}" for r in results], query=query)
    else:
        audit.record(session, principal, "search-type", query=query, detail={"results": 0})
    return results
