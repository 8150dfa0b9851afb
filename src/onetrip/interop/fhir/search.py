"""Search parameter parsing, strict: an unknown or malformed parameter is a 400, not silently ignored."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from onetrip.kit.clock import MAX_SERVICE_DATE
from onetrip.kit.errors import BadRequest

COMMON = {"_count", "_offset", "_format", "_pretty", "_summary", "_total"}
MAX_COUNT = 200
MIN_DATE, MAX_DATE = dt.date(1800, 1, 1), MAX_SERVICE_DATE  # room for ± a day or a year of arithmetic


def check_params(params: list[tuple[str, str]], allowed: set[str], resource_type: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params:
        base = key.split(":")[0]
        if base not in allowed and base not in COMMON:
            raise BadRequest(
                f"不支持的查询参数 {key!r} / unsupported search parameter {key!r} for {resource_type}; "
                f"supported: {', '.join(sorted(allowed | {'_count'}))}", code="not-supported")
        if key in out:
            raise BadRequest(f"查询参数重复 / repeated search parameter {key!r}")
        out[key] = value
    if out.get("_format") and "json" not in out["_format"]:
        raise BadRequest("只支持 JSON / only JSON is supported (_format=json)", code="not-supported")
    return out


def count_offset(p: dict[str, str], default: int = 20) -> tuple[int, int]:
    try:
        count = int(p.get("_count", default))
        offset = int(p.get("_offset", 0))
    except ValueError:
        raise BadRequest("_count 和 _offset 须为整数 / _count and _offset must be integers") from None
    if count < 0 or offset < 0:
        raise BadRequest("_count 和 _offset 不能为负 / _count and _offset must not be negative")
    return min(count, MAX_COUNT), offset


def parse_date(value: str, name: str) -> tuple[str, dt.date]:
    """``birthdate=1980-05-17`` or with a prefix ``ge``/``le``/``gt``/``lt``/``eq``; a year or year-month
    means the whole period (expressed as a range by the caller)."""
    prefix = value[:2] if value[:2] in ("eq", "ge", "le", "gt", "lt") else "eq"
    text = value[2:] if value[:2] == prefix and value[:2] in ("eq", "ge", "le", "gt", "lt") else value
    try:
        if len(text) == 4:
            kind, value = prefix + "-year", dt.date(int(text), 1, 1)
        elif len(text) == 7:
            kind, value = prefix + "-month", dt.date(int(text[:4]), int(text[5:7]), 1)
        else:
            kind, value = prefix, dt.date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} 日期格式应为 YYYY-MM-DD / {name} must be a date like 1980-05-17") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise BadRequest(f"{name} 日期超出范围 / {name} must lie between {MIN_DATE} and {MAX_DATE}")
    return kind, value


def bundle(resources: list[dict], base_url: str, resource_type: str, params: dict[str, str], count: int,
           offset: int, has_more: bool, total: int | None = None) -> dict:
    def link(relation: str, off: int) -> dict:
        q = {k: v for k, v in params.items() if k not in ("_offset", "_count")}
        q.update({"_count": str(count), "_offset": str(off)})
        return {"relation": relation, "url": f"{base_url}/{resource_type}?{urlencode(q)}"}

    links = [link("self", offset)]
    if has_more:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    b = {"resourceType": "Bundle", "type": "searchset", "link": links,
         "entry": [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r,
                    "search": {"mode": "match"}} for r in resources]}
    if total is not None:
        b["total"] = total
    return b
