"""FHIR R4 pieces every layer may use: validation with fhir.resources, instants and references, strict
search-parameter parsing, and the declaration types a domain describes its FHIR resource types with.

Pure: no routing, no database access. The façade (``onetrip.interop.fhir``) collects the declarations
(``ResourceType``) of every domain's ``fhir.py``, generates the routes, pages search results, serves
``_history``/vread, processes transaction/batch Bundles and writes the CapabilityStatement from them.

fhir.resources 8 ships R5 (default), R4B and STU3. R4B (4.3) is structurally identical to R4 (4.0.1) for
every resource served here, so we validate with ``fhir.resources.R4B`` — the closest the library ships.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from onetrip.kit.clock import LOCAL_TZ, MAX_SERVICE_DATE
from onetrip.kit.errors import ApiError, BadRequest, Forbidden
from onetrip.kit.principal import Principal
from onetrip.kit.scopes import allows

FHIR_JSON = "application/fhir+json"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"

# --- validation, instants, references -------------------------------------------------------------

_MODELS: dict[str, Any] = {}
# Set while the entries of a Bundle the façade validated as a whole are created: each entry's resource was
# validated then, as its own type, so a create handler need not validate it a second time.
_IN_VALIDATED_BUNDLE: contextvars.ContextVar[bool] = contextvars.ContextVar("in_validated_bundle", default=False)


def model_class(resource_type: str):
    if resource_type not in _MODELS:
        import importlib

        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
        _MODELS[resource_type] = getattr(module, resource_type)
    return _MODELS[resource_type]


def validate(resource_type: str, body: Any) -> dict:
    """Check a client's JSON against the FHIR model; 400 with every problem listed otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("请求体须为 FHIR JSON 对象 / the body must be a FHIR JSON object")
    if body.get("resourceType") != resource_type:
        raise BadRequest(f"resourceType 应为 {resource_type} / resourceType must be {resource_type!r}, "
                         f"got {body.get('resourceType')!r}", expression=["resourceType"])
    try:
        model_class(resource_type).model_validate(body)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:10])
        raise BadRequest(f"FHIR 资源校验失败 / invalid {resource_type}: {problems}") from None
    return body


def in_validated_bundle() -> bool:
    """Whether the body being created was already validated with its whole Bundle."""
    return _IN_VALIDATED_BUNDLE.get()


def instant(value: dt.datetime) -> str:
    """A FHIR instant in UTC with the Z suffix: 2026-11-23T02:18:09.662749Z."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def meta(version: int, updated: dt.datetime) -> dict:
    return {"versionId": str(version), "lastUpdated": instant(updated)}


def ref(kind: str, id_: str | None, display: str | None = None) -> dict | None:
    if not id_:
        return None
    return {"reference": f"{kind}/{id_}", **({"display": display} if display else {})}


def ref_id(reference: dict | None, kind: str) -> str | None:
    if not reference or not isinstance(reference.get("reference"), str):
        return None
    parts = reference["reference"].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == kind:
        return parts[-1]
    raise BadRequest(f"引用应指向 {kind} / reference must point to a {kind}: {reference['reference']!r}")


def clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (None, [], {}, "")}


def official_name(names: list[dict]) -> str | None:
    """The official name's text (or family + given); the pinyin (representation ABC) only when alone."""
    ranked = sorted(names, key=lambda n: 0 if n.get("use") == "official" else 1)
    for n in ranked:
        rep = next((e.get("valueCode") for e in n.get("extension", []) if e.get("url") == EN_REPRESENTATION), None)
        if rep == "ABC" and len(ranked) > 1:
            continue
        if n.get("text"):
            return n["text"]
        if n.get("family") or n.get("given"):
            return (n.get("family") or "") + "".join(n.get("given") or [])
    return None


def ascii_digits(text: str) -> bool:
    """str.isdigit() accepts '³' and other digits int() refuses; identifiers here are ASCII."""
    return text.isascii() and text.isdigit()


def require_scope(principal: Principal, resource: str, permission: str) -> None:
    """The token's SMART scope must allow ``permission`` (c r u d s) on ``resource``; 403 otherwise."""
    if not allows(principal.scopes, resource, permission):
        raise Forbidden(f"令牌的授权范围不包含 {resource}.{permission} / token scope does not allow "
                        f"{permission!r} on {resource}")


def parse_if_match(value: str | None) -> int | None:
    if not value:
        return None
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    if not ascii_digits(v):
        raise BadRequest('If-Match 应为 W/"版本号" / If-Match must look like W/"3"')
    return int(v)


def wants_minimal(prefer: str | None) -> bool:
    """``Prefer: return=minimal`` (RFC 7240; FHIR http.html#ops): the client wants no resource bodies back.
    ``return=representation`` (the default) and ``return=OperationOutcome`` get the resources."""
    for part in (prefer or "").replace(";", ",").split(","):
        name, _, value = part.partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"').lower() == "minimal"
    return False


# --- search parameters (strict: an unknown or malformed parameter is a 400, not silently ignored) ---

COMMON = {"_count", "_offset", "_format", "_pretty", "_summary", "_total"}
MAX_COUNT = 200
MAX_OFFSET = 10_000_000  # paging deeper than this is a scan, not a search: narrow the query
MAX_DIGITS = len(str(MAX_OFFSET))
MIN_DATE, MAX_DATE = dt.date(1800, 1, 1), MAX_SERVICE_DATE  # room for ± a day or a year of arithmetic
DATE_PREFIXES = ("eq", "ge", "le", "gt", "lt")


def check_params(params: list[tuple[str, str]], allowed: Collection[str], resource_type: str,
                 repeatable: Collection[str] = ()) -> dict[str, str]:
    """The parameters as a dict; an unknown one is a 400, and so is a repeated one unless ``repeatable``
    (date parameters: the values are joined with ``DATE_AND`` and must all hold, see ``date_search``)."""
    out: dict[str, str] = {}
    allowed = set(allowed)
    for key, value in params:
        base = key.split(":")[0]
        if base not in allowed and base not in COMMON:
            raise BadRequest(
                f"不支持的查询参数 {key!r} / unsupported search parameter {key!r} for {resource_type}; "
                f"supported: {', '.join(sorted(allowed | {'_count'}))}", code="not-supported")
        if key in out:
            if key in repeatable and DATE_AND not in value:
                out[key] = out[key] + DATE_AND + value
                continue
            raise BadRequest(f"查询参数重复 / repeated search parameter {key!r}")
        out[key] = value
    if out.get("_format") and "json" not in out["_format"]:
        raise BadRequest("只支持 JSON / only JSON is supported (_format=json)", code="not-supported")
    return out


def check_types(raw: Mapping[str, str], declared: Collection[SearchParam]) -> None:
    """Every declared ``date`` parameter goes through the date parser and every ``number`` one must be a
    number, before any handler runs: ``date=garbage`` is a 400 whichever handler serves the type."""
    types = {p.name: p.type for p in declared}
    for key, value in raw.items():
        kind = types.get(key.split(":")[0])
        if not value or ":" in key:
            continue
        if kind == "date":
            date_search(value, key)
        elif kind == "number":
            for v in value.split(","):
                text = v[2:] if v[:2] in SEARCH_DATE_PREFIXES else v
                try:
                    ok = text.isascii() and math.isfinite(float(text)) and len(text) <= 32
                except ValueError:
                    ok = False
                if not ok:
                    raise BadRequest(f"{key} 须为数字 / {key} must be a number; got {v[:40]!r}", expression=[key])


def count_offset(p: Mapping[str, str], default: int = 20) -> tuple[int, int]:
    """``_count`` (capped at MAX_COUNT) and ``_offset`` (at most MAX_OFFSET): plain ASCII digits only, so
    ``-1``, ``+5``, ``1_0`` and ``10^30`` are a 400, never an integer overflow in the database."""
    count_text, offset_text = p.get("_count", str(default)), p.get("_offset", "0")
    for name, text in (("_count", count_text), ("_offset", offset_text)):
        if not ascii_digits(text) or len(text) > MAX_DIGITS:
            raise BadRequest(f"{name} 须为不大于 {MAX_OFFSET} 的非负整数 / {name} must be a whole number from 0 "
                             f"to {MAX_OFFSET}; got {text[:40]!r}", expression=[name])
    count, offset = int(count_text), int(offset_text)
    if offset > MAX_OFFSET:
        raise BadRequest(f"_offset 不能大于 {MAX_OFFSET} / _offset must not exceed {MAX_OFFSET}; narrow the "
                         f"search instead", expression=["_offset"])
    return min(count, MAX_COUNT), offset


def parse_date(value: str, name: str) -> tuple[str, dt.date]:
    """``birthdate=1980-05-17`` or with a prefix ``ge``/``le``/``gt``/``lt``/``eq``; a year or year-month
    means the whole period (expressed as a range by the caller). One value: a repeated parameter is refused
    here (``date_search`` takes repeats and dateTimes)."""
    if DATE_AND in value:
        raise BadRequest(f"查询参数重复 / repeated search parameter {name!r}")
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] == prefix and value[:2] in DATE_PREFIXES else value
    try:
        if len(text) == 4:
            kind, day = prefix + "-year", dt.date(int(text), 1, 1)
        elif len(text) == 7:
            kind, day = prefix + "-month", dt.date(int(text[:4]), int(text[5:7]), 1)
        else:
            kind, day = prefix, dt.date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} 日期格式应为 YYYY-MM-DD / {name} must be a date like 1980-05-17") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise BadRequest(f"{name} 日期超出范围 / {name} must lie between {MIN_DATE} and {MAX_DATE}")
    return kind, day


def parse_datetime(value: str | None, field: str) -> dt.datetime | None:
    """A FHIR dateTime from a client, in UTC: a date alone is local midnight, a time without an offset is
    local (Asia/Shanghai)."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), LOCAL_TZ).astimezone(dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{field} 时间格式无效 / {field} is not a dateTime this server accepts: {value!r}",
                         expression=[field]) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_TZ)).astimezone(dt.UTC)


# --- date search parameters at any precision (FHIR R4 search.html#date) -----------------------------

SEARCH_DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
DATE_AND = "&"  # the façade joins a repeated date parameter (date=ge…&date=lt…: both must hold) with this
_PRECISIONS = {4: "year", 7: "month", 10: "day"}
Range = tuple[dt.datetime | None, dt.datetime | None]  # [start, end) in UTC; None: unbounded


@dataclass(frozen=True)
class DateValue:
    """One date search value: its prefix and the period it denotes, [start, end) in UTC. ``2026`` is the
    year, ``2026-12`` the month, ``2026-12-08`` the day (local days: Asia/Shanghai), ``2026-12-08T08:00``
    the minute, ``…T08:00:00`` the second and ``…T08:00:00.5`` the millisecond; a time without an offset
    is local."""

    prefix: str
    start: dt.datetime
    end: dt.datetime
    precision: str

    def ranges(self, now: dt.datetime | None = None) -> list[Range]:
        """Where a point in time (an instant such as a slot's start) matches, as [start, end) ranges
        (their union). ``sa``/``eb`` are ``gt``/``lt`` for a point; ``ap`` widens the period by 10 % of
        its distance from now (at least one day), the FHIR recommendation."""
        p, lo, hi = self.prefix, self.start, self.end
        if p == "eq":
            return [(lo, hi)]
        if p == "ne":
            return [(None, lo), (hi, None)]
        if p in ("gt", "sa"):
            return [(hi, None)]
        if p == "ge":
            return [(lo, None)]
        if p in ("lt", "eb"):
            return [(None, lo)]
        if p == "le":
            return [(None, hi)]
        now = now or dt.datetime.now(dt.UTC)
        slack = max(abs(lo - now) / 10, dt.timedelta(days=1))
        return [(lo - slack, hi + slack)]


def _month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def date_value(value: str, name: str) -> DateValue:
    """Parse one date search value: an optional prefix (eq ne lt gt le ge sa eb ap) and a date or dateTime
    at any precision; 400 (OperationOutcome) when malformed or out of range."""
    prefix = value[:2] if value[:2] in SEARCH_DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in SEARCH_DATE_PREFIXES else value
    bad = BadRequest(f"{name} 日期格式无效 / {name} must be a FHIR date or dateTime with an optional prefix "
                     f"(eq ne lt gt le ge sa eb ap), e.g. 2026, 2026-12, 2026-12-08, ge2026-12-08T08:00:00+08:00; "
                     f"got {value!r}", expression=[name])
    if not text or not text[:4].isascii() or not text[:4].isdigit():
        raise bad
    try:
        precision = _PRECISIONS.get(len(text))
        if precision == "year":
            y = int(text)
            day, after = dt.date(y, 1, 1), dt.date(y + 1, 1, 1)
        elif precision == "month":
            if text[4] != "-" or not ascii_digits(text[5:7]):
                raise ValueError
            y, m = int(text[:4]), int(text[5:7])
            day, after = dt.date(y, m, 1), dt.date(*_month_after(y, m), 1)
        elif precision == "day":
            day = dt.date.fromisoformat(text)
            after = day + dt.timedelta(days=1)
        else:
            if len(text) < 16 or text[10] != "T" or " " in text:
                raise ValueError
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=LOCAL_TZ)
            clock = text[11:].split("+")[0].split("-")[0].rstrip("Z")
            if "." in clock:
                precision, span = "millisecond", dt.timedelta(milliseconds=1)
            elif clock.count(":") >= 2:
                precision, span = "second", dt.timedelta(seconds=1)
            else:
                precision, span = "minute", dt.timedelta(minutes=1)
            if not MIN_DATE <= parsed.date() <= MAX_DATE:
                raise OverflowError
            start = parsed.astimezone(dt.UTC)
            return DateValue(prefix, start, start + span, precision)
    except OverflowError:
        raise BadRequest(f"{name} 日期超出范围 / {name} must lie between {MIN_DATE} and {MAX_DATE}",
                         expression=[name]) from None
    except ValueError:
        raise bad from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise BadRequest(f"{name} 日期超出范围 / {name} must lie between {MIN_DATE} and {MAX_DATE}",
                         expression=[name])
    local = (dt.datetime.combine(d, dt.time(), LOCAL_TZ).astimezone(dt.UTC) for d in (day, after))
    return DateValue(prefix, next(local), next(local), precision)


@dataclass(frozen=True)
class DateSearch:
    """A date parameter as given: every group must hold (a repeated parameter: AND), within a group one
    value (comma-separated: OR)."""

    groups: tuple[tuple[DateValue, ...], ...]

    def ranges(self, now: dt.datetime | None = None) -> list[list[Range]]:
        return [[r for v in group for r in v.ranges(now)] for group in self.groups]

    def matches(self, t: dt.datetime, now: dt.datetime | None = None) -> bool:
        """Whether the instant ``t`` matches (the same test ``condition`` builds in SQL)."""
        return all(any((lo is None or lo <= t) and (hi is None or t < hi) for lo, hi in group)
                   for group in self.ranges(now))

    def bounds(self, now: dt.datetime | None = None) -> Range:
        """The smallest [start, end) holding every match (None: unbounded), to narrow a query first."""
        lo: dt.datetime | None = None
        hi: dt.datetime | None = None
        for group in self.ranges(now):
            los = [r[0] for r in group]
            his = [r[1] for r in group]
            g_lo = None if None in los else min(los)  # type: ignore[type-var]
            g_hi = None if None in his else max(his)  # type: ignore[type-var]
            lo = g_lo if lo is None else (lo if g_lo is None else max(lo, g_lo))
            hi = g_hi if hi is None else (hi if g_hi is None else min(hi, g_hi))
        return lo, hi

    def condition(self, column, now: dt.datetime | None = None):
        """A SQLAlchemy condition on a timestamp ``column`` (an expression; nothing is run)."""
        from sqlalchemy import and_, or_, true

        def one(lo, hi):
            parts = ([column >= lo] if lo is not None else []) + ([column < hi] if hi is not None else [])
            return and_(*parts) if parts else true()

        return and_(*(or_(*(one(lo, hi) for lo, hi in group)) for group in self.ranges(now)))


def date_search(raw: str, name: str) -> DateSearch:
    """``start=ge2026-12-08T08:00:00+08:00``, ``date=2026-12``, ``date=lt2026-12-09,ge2027`` (comma: either),
    and a repeated parameter ``date=ge2026-12-08&date=lt2026-12-09`` (both; joined by the façade)."""
    groups = []
    for part in raw.split(DATE_AND):
        values = tuple(date_value(v, name) for v in part.split(","))
        groups.append(values)
    return DateSearch(tuple(groups))


# --- Bundle entries (shared by the façade's Bundle processing and a domain's transaction shortcut) ---

def resolve(node: Any, ids: dict[str, str]) -> Any:
    """Replace references to ``urn:uuid:`` fullUrls of earlier entries with ``Type/id``, in place: the
    node is the request's own parsed JSON, which nothing else holds (no copy of every resource)."""
    if isinstance(node, dict):
        for value in node.values():
            if isinstance(value, (dict, list)):
                resolve(value, ids)
        reference = node.get("reference")
        if isinstance(reference, str) and reference.startswith("urn:"):
            if reference not in ids:
                raise BadRequest(f"引用无法解析 / reference {reference!r} does not match an entry of this bundle",
                                 expression=["reference"])
            node["reference"] = ids[reference]
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                resolve(value, ids)
    return node


def entry_request(i: int, entry: dict, accepted: Collection[str]) -> tuple[str, dict, str | None]:
    """(type, resource, ifNoneExist) of a Bundle entry that POSTs a resource of an ``accepted`` type."""
    req = entry.get("request") or {}
    resource = entry.get("resource")
    if not isinstance(resource, dict) or not resource.get("resourceType"):
        raise BadRequest(f"条目 {i} 缺少资源 / entry {i} has no resource")
    rtype = resource["resourceType"]
    if req.get("method") != "POST" or (req.get("url") or "").split("?")[0] != rtype:
        raise BadRequest(f"条目 {i}：只支持 POST {rtype} / entry {i}: only POST to {rtype} is supported",
                         code="not-supported")
    if rtype not in accepted:
        raise BadRequest(f"条目 {i}：不支持的资源类型 / entry {i}: unsupported resource type {rtype!r}",
                         code="not-supported")
    return rtype, resource, req.get("ifNoneExist")


def entry_error(i: int, e: ApiError) -> ApiError:
    """A transaction fails as a whole: nothing of it is committed, not even an audited denial."""
    return ApiError(f"条目 {i} / entry {i}: {e.message}", status=e.status, code=e.code, expression=e.expression)


# --- declarations ---------------------------------------------------------------------------------

@dataclass
class Context:
    """What a handler gets besides its arguments: the session, who is acting, the server's FHIR base URL,
    the raw query text and the request headers that change an interaction's meaning."""

    session: Any  # sqlalchemy.orm.Session
    principal: Principal
    base: str
    query: str = ""
    if_none_exist: str | None = None
    if_match: str | None = None
    minimal: bool = False  # Prefer: return=minimal
    if_none_exist_label: str = "If-None-Exist"  # "ifNoneExist" inside a Bundle
    method: str = "GET"


@dataclass
class Page:
    """One page of a search: the resources, whether more follow; ``total`` when known; ``offset`` when the
    page's links should start elsewhere than the requested offset (a search by ``_id``)."""

    resources: list[dict]
    has_more: bool = False
    total: int | None = None
    offset: int | None = None


@dataclass
class Created:
    """The answer of a create or operation: the resource, its status (201 created, 200 found), and the
    Location when it is not ``{base}/{type}/{id}/_history/{meta.versionId}``."""

    resource: dict
    status: int = 201
    location: str | None = None


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # FHIR search parameter type: token, string, date, reference, uri, number


Read = Callable[[Context, str], dict]
Search = Callable[[Context, dict[str, str], int, int], Page]
Create = Callable[[Context, dict], Created]
Update = Callable[[Context, str, dict], dict]
Delete = Callable[[Context, str], None]


@dataclass
class Operation:
    """A FHIR operation on a type (``Patient/$match``, ``Appointment/$book``). ``handler(ctx, body,
    params)``: body is the parsed JSON (None on GET), params the query pairs. ``scope``: (resource,
    permission) checked first. ``body``: "dict" (a JSON object, required), "any" or "optional"."""

    name: str
    handler: Callable[[Context, Any, list[tuple[str, str]]], Created]
    scope: tuple[str, str]
    methods: tuple[str, ...] = ("POST",)
    status: int = 200
    body: str = "dict"
    definition: str | None = None
    doc: str | None = None


@dataclass
class Variant:
    """A second domain serving some resources of a type another domain provides (self-check readings among
    Observations, referrals among ServiceRequests). It is asked first: ``claims(body)`` takes a create,
    ``read`` answers None for ids that are not its own, ``claims_search(pairs)`` takes a search, which is
    then checked against ``search_params``."""

    name: str
    claims: Callable[[Any], bool] | None = None
    create: Create | None = None
    read: Callable[[Context, str], dict | None] | None = None
    claims_search: Callable[[list[tuple[str, str]]], bool] | None = None
    search: Search | None = None
    search_params: tuple[SearchParam, ...] = ()


@dataclass
class ResourceType:
    """One FHIR resource type as a domain serves it. Interactions are the handlers given; the façade
    checks the SMART scope (``authorize`` replaces that check when given), parses and pages searches
    (``search_params``, ``default_count``), serves vread/_history from version snapshots when
    ``versioned`` / ``history`` (``before_versions(ctx, id, interaction)`` checks access first) and
    answers 405 for the rest (``refusals`` give a method its own message)."""

    name: str
    read: Read | None = None
    search: Search | None = None
    search_params: tuple[SearchParam, ...] = ()
    create: Create | None = None
    update: Update | None = None
    delete: Delete | None = None
    conditional_create: bool = False
    versioned: bool = False
    history: bool = False
    before_versions: Callable[[Context, str, str], None] | None = None
    authorize: Callable[[Principal, str], None] | None = None
    operations: tuple[Operation, ...] = ()
    variants: tuple[Variant, ...] = ()
    default_count: int = 20
    refusals: dict[str, str] = field(default_factory=dict)
    doc: str = ""
    # Transaction/batch Bundles: entries of this type are accepted when ``bundle_rank`` is set; entries are
    # processed by rank (what is referenced exists first). ``create_group(ctx, bodies)`` creates several
    # entries of a transaction in one go; ``transaction_shortcut(ctx, entries, ids)`` may take a whole
    # transaction of a known shape (None: not this shape, nothing written).
    bundle_rank: int | None = None
    create_group: Callable[..., list[tuple[int, int, dict]]] | None = None
    transaction_shortcut: Callable[..., list[tuple[int, int, dict]] | None] | None = None

    def param_names(self) -> set[str]:
        return {p.name for p in self.search_params}


def params(*pairs: tuple[str, str]) -> tuple[SearchParam, ...]:
    return tuple(SearchParam(n, t) for n, t in pairs)
