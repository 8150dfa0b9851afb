"""Batch jobs of the master patient index (issue 3 §3): train on the registry, re-link the whole registry,
de-duplicate a CSV file. Splink 5 on DuckDB does the pair generation and scoring (``splink_model``);
what to do with each pair follows the same rules as online matching (``matching.decide``, M2, M3).

Re-linking never merges silently: a pair at or above the link threshold becomes a *link* (one record
moves to the other person, recorded in ``person_merge`` so it can be undone) only when the record's
person has no other record; every other pair at or above the review threshold becomes a review item.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity import matching, mpi, splink_model
from onetrip.identity import repository as repo
from onetrip.identity.models import MatchReview
from onetrip.identity.normalize import split_address
from onetrip.kit.identifiers import IdentifierError, normalize_phone, normalize_sex, parse_resident_id
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord, Person

Progress = Callable[[str, int, int], None]


def _noop(step: str, done: int, total: int) -> None:
    return None


def registry_rows(session: Session, progress: Progress = _noop, batch: int = 5000) -> list[dict[str, Any]]:
    """Feature rows for every live patient record (unique_id = record id)."""
    total = session.scalar(select(func.count()).select_from(PatientRecord)
                           .where(PatientRecord.deleted_at.is_(None))) or 0
    rows: list[dict[str, Any]] = []
    stmt = select(PatientRecord).where(PatientRecord.deleted_at.is_(None)).execution_options(yield_per=batch)
    for r in session.scalars(stmt):
        rows.append({splink_model.UID: r.id, **mpi.features_of(r).as_row()})
        if len(rows) % batch == 0:
            progress("读取记录 / reading records", len(rows), total)
    progress("读取记录 / reading records", len(rows), total)
    return rows


def train_from_registry(session: Session, *, max_pairs: float = 2e6, progress: Progress = _noop) -> tuple[dict, dict]:
    started = time.perf_counter()
    rows = registry_rows(session, progress)
    if len(rows) < 100:
        raise ValueError(f"记录太少，无法训练（{len(rows)} 条）/ too few records to train a model ({len(rows)}); "
                         "use --demo-residents to train on the synthetic district")
    model = splink_model.train(splink_model.frame(rows), max_pairs=max_pairs)
    return model, {"source": "registry", "records": len(rows), "seconds": round(time.perf_counter() - started, 1)}


@dataclass
class RelinkSummary:
    records: int = 0
    pairs_scored: int = 0
    links: int = 0
    reviews: int = 0
    skipped_not_a_match: int = 0
    skipped_known: int = 0
    seconds: float = 0.0


def relink(session: Session, principal: Principal, progress: Progress = _noop) -> RelinkSummary:
    """Re-link the whole registry with the current model. Flushes; the caller commits."""
    started = time.perf_counter()
    t = mpi.thresholds(session)
    model = mpi.current_model(session)
    raw = model.raw or mpi.default_model_json()
    rows = registry_rows(session, progress)
    out = RelinkSummary(records=len(rows))
    if len(rows) < 2:
        return out
    _, pred = splink_model.predict(raw, splink_model.frame(rows), threshold_match_weight=t["review_threshold"])
    pairs = pred.as_pandas_dataframe()[["unique_id_l", "unique_id_r", "match_weight", "match_probability"]]
    pairs = pairs.sort_values("match_weight", ascending=False)
    out.pairs_scored = len(pairs)
    by_id = {r[splink_model.UID]: r for r in rows}
    for i, (lid, rid, weight, prob) in enumerate(pairs.itertuples(index=False, name=None)):
        if i % 500 == 0:
            progress("处理配对 / applying pairs", i, len(pairs))
        left, right = session.get(PatientRecord, lid), session.get(PatientRecord, rid)
        if left.person_id == right.person_id:
            continue
        # The record that moves (or is reviewed) is the one whose person has fewer records.
        lcount, rcount = (len(repo.records_of_person(session, x.person_id)) for x in (left, right))
        rec, other = (left, right) if lcount <= rcount else (right, left)
        if repo.not_a_match_pairs(session, rec.person_id, [other.person_id]):
            out.skipped_not_a_match += 1
            continue
        target = session.get(Person, other.person_id)
        source = session.get(Person, rec.person_id)
        conflict = matching.id_conflict(source.id_number, target.id_number) or matching.id_conflict(
            by_id[lid]["id_number"], by_id[rid]["id_number"])
        decision = matching.decide(float(weight), link_threshold=t["link_threshold"],
                                   review_threshold=t["review_threshold"], conflict=conflict)
        if decision == matching.LINK and min(lcount, rcount) == 1 and rec.link_method == "new" \
                and target.merged_into_id is None:
            mpi.link_record(session, principal, rec.id, target.id, reason=f"relink {model.version}", method="mpi")
            out.links += 1
            continue
        if decision == matching.NEW:
            continue
        known = session.scalar(select(MatchReview.id).where(
            ((MatchReview.record_id == rec.id) & (MatchReview.candidate_person_id == other.person_id))
            | ((MatchReview.record_id == other.id) & (MatchReview.candidate_person_id == rec.person_id))))
        if known is not None:
            out.skipped_known += 1
            continue
        s = matching.score(model, mpi.features_of(rec), mpi.features_of(other))
        session.add(MatchReview(person_id=rec.person_id, record_id=rec.id, candidate_person_id=other.person_id,
                                candidate_record_id=other.id, match_weight=float(weight),
                                match_probability=float(prob), levels=s.levels, source="relink",
                                model_version=model.version, status="open"))
        session.flush()
        out.reviews += 1
    progress("处理配对 / applying pairs", len(pairs), len(pairs))
    out.seconds = round(time.perf_counter() - started, 1)
    return out


# --- CSV de-duplication -----------------------------------------------------------------------------------

CSV_COLUMNS = ("record_id", "source", "name", "sex", "birth_date", "id_number", "phone", "address")


@dataclass
class RowProblem:
    line: int  # 1-based line in the file (the header is line 1)
    record_id: str
    field: str
    message: str


@dataclass
class DedupeResult:
    assignments: list[tuple[str, str]]  # (record_id, person_id) in input order
    problems: list[RowProblem] = field(default_factory=list)
    pairs_scored: int = 0
    persons: int = 0


class CsvError(ValueError):
    """The file cannot be read at all (encoding, header, duplicate ids) — nothing is written."""


def read_csv(text: str) -> tuple[list[dict[str, Any]], list[RowProblem]]:
    """Parse and normalise the input file. Bad values are reported and treated as missing — the row is
    kept (every input record gets a person_id in the output)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise CsvError(f"缺少列 / missing columns: {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})")
    rows: list[dict[str, Any]] = []
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for n, raw in enumerate(reader, start=2):
        raw = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        rid = raw["record_id"]
        if not rid:
            raise CsvError(f"第 {n} 行缺少 record_id / line {n}: record_id is empty")
        if rid in seen:
            raise CsvError(f"第 {n} 行 record_id 重复 / line {n}: duplicate record_id {rid!r}")
        seen.add(rid)

        def bad(fld: str, msg: str, rid: str = rid, n: int = n) -> None:
            problems.append(RowProblem(n, rid, fld, msg))

        sex = None
        if raw["sex"]:
            try:
                sex = normalize_sex(raw["sex"])
            except IdentifierError as e:
                bad("sex", str(e))
        birth = None
        if raw["birth_date"]:
            try:
                birth = dt.date.fromisoformat(raw["birth_date"])
            except ValueError:
                bad("birth_date", f"日期应为 YYYY-MM-DD / birth_date must be YYYY-MM-DD, got {raw['birth_date']!r}")
        id_number = None
        if raw["id_number"]:
            try:
                id_number = parse_resident_id(raw["id_number"]).number
            except IdentifierError as e:
                bad("id_number", str(e))
        phone = None
        if raw["phone"]:
            try:
                phone = normalize_phone(raw["phone"])
            except IdentifierError as e:
                bad("phone", str(e))
        if not raw["name"]:
            bad("name", "姓名为空 / name is empty")
        addr = split_address(raw["address"])
        f = matching.features(name=raw["name"] or None, birth_date=birth, sex=sex, id_number=id_number,
                              phone=phone, district=addr.district, street=addr.street, address_line=addr.line)
        rows.append({splink_model.UID: rid, **f.as_row()})
    return rows, problems


class _Components:
    """Union–find that refuses to join two groups carrying different valid resident IDs (M2)."""

    def __init__(self, ids: Iterator[tuple[str, str | None]]):
        self.parent: dict[str, str] = {}
        self.ids: dict[str, set[str]] = {}
        for uid, rid in ids:
            self.parent[uid] = uid
            self.ids[uid] = {rid} if rid else set()

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        merged = self.ids[ra] | self.ids[rb]
        if len(merged) > 1:
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.ids[ra] = merged
        return True


def dedupe(rows: list[dict[str, Any]], model_json: dict, *, link_threshold: float,
           progress: Progress = _noop) -> DedupeResult:
    """Cluster the rows: pairs at or above ``link_threshold`` (match weight) join, strongest first,
    never across different valid IDs. person_id = the smallest record_id of the cluster."""
    comps = _Components((r[splink_model.UID], r["id_number"]) for r in rows)
    scored = 0
    if len(rows) > 1:
        progress("打分 / scoring pairs (Splink)", 0, 1)
        _, pred = splink_model.predict(model_json, splink_model.frame(rows), threshold_match_weight=link_threshold)
        df = pred.as_pandas_dataframe()[["unique_id_l", "unique_id_r", "match_weight"]]
        df = df.sort_values("match_weight", ascending=False)
        scored = len(df)
        progress("打分 / scoring pairs (Splink)", 1, 1)
        for i, (a, b, _w) in enumerate(df.itertuples(index=False, name=None)):
            comps.union(str(a), str(b))
            if i % 10_000 == 0:
                progress("聚类 / clustering", i, scored)
        progress("聚类 / clustering", scored, scored)
    out = [(r[splink_model.UID], comps.find(r[splink_model.UID])) for r in rows]
    return DedupeResult(out, [], scored, len({p for _, p in out}))
