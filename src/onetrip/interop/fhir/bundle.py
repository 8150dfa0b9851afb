"""``POST /fhir/R4``: ``transaction`` (all entries or none, one database transaction) and ``batch`` (each entry
on its own, an outcome per entry) Bundles, through the same create handlers as ``POST /{type}``.

Entries are created in the order their types' ``bundle_rank`` gives (patients, orders, observations,
studies, reports: what is referenced exists first); ``urn:uuid:`` fullUrls are resolved inside the bundle.
A type may create a transaction's entries of its type in one go (``create_group``) or take a whole
transaction of a shape it knows (``transaction_shortcut``) — with the same outcome as entry by entry.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from onetrip.interop.fhir.registry import bundle_types, resource_types
from onetrip.kit.errors import ApiError, BadRequest, operation_outcome
from onetrip.kit.fhir import (
    _IN_VALIDATED_BUNDLE,
    Context,
    Created,
    ResourceType,
    Variant,
    entry_error,
    entry_request,
    require_scope,
    resolve,
    validate,
)


def authorize(rt: ResourceType, ctx: Context, permission: str) -> None:
    if rt.authorize is not None:
        rt.authorize(ctx.principal, permission)
    else:
        require_scope(ctx.principal, rt.name, permission)


def claims(v: Variant, body: Any) -> bool:
    """Whether the variant claims a create body; a body too malformed to tell goes to the primary provider,
    whose validation answers it."""
    try:
        return v.claims is not None and bool(v.claims(body))
    except (AttributeError, KeyError, TypeError, ValueError):
        return False


def create_handler(rt: ResourceType, body: Any):
    """The variant that claims the body, else the primary provider's create (None: no create)."""
    for v in rt.variants:
        if v.create is not None and claims(v, body):
            return v.create
    return rt.create


def claimed_by_variant(entry: Any) -> Variant | None:
    resource = entry.get("resource") if isinstance(entry, dict) else None
    rt = resource_types().get((resource or {}).get("resourceType")) if isinstance(resource, dict) else None
    if rt is None:
        return None
    return next((v for v in rt.variants if claims(v, resource)), None)


def _rank(entry: dict) -> int:
    rt = resource_types().get((entry.get("resource") or {}).get("resourceType"))
    return rt.bundle_rank if rt is not None and rt.bundle_rank is not None else 0


def _refer_to_each_other(group: list[dict]) -> bool:
    """Whether an entry of the group refers to another's fullUrl (hasMember, derivedFrom ...): then they are
    created one after another, as each needs the one before it stored."""
    urls = {e["fullUrl"] for e in group if isinstance(e.get("fullUrl"), str)}
    if not urls:
        return False
    text = json.dumps([e.get("resource") for e in group])
    return any(json.dumps(u) in text for u in urls)


def _response_entry(status: int, out: dict, base: str, minimal: bool = False) -> dict:
    text = {200: "200 OK", 201: "201 Created"}[status]
    entry = {"fullUrl": f"{base}/{out['resourceType']}/{out['id']}",
             "response": {"status": text, "location": f"{base}/{out['resourceType']}/{out['id']}/_history/"
                                                      f"{(out.get('meta') or {}).get('versionId', '1')}"}}
    if not minimal:
        entry["resource"] = out
    return entry


def _one_entry(ctx: Context, i: int, entry: dict, ids: dict[str, str]) -> tuple[int, dict]:
    rtype, resource, if_none_exist = entry_request(i, entry, bundle_types())
    resource = resolve(resource, ids)
    rt = resource_types()[rtype]
    authorize(rt, ctx, "c")
    handler = create_handler(rt, resource)
    if handler is None:
        raise BadRequest(f"不支持的资源类型 / {rtype} cannot be created here", code="not-supported")
    created: Created = handler(dataclasses.replace(ctx, if_none_exist=if_none_exist,
                                                   if_none_exist_label="ifNoneExist"), resource)
    return created.status, created.resource


def _groups(kind: str, entries: list[dict], order: list[int]) -> list[tuple[ResourceType, list[int]]]:
    """A transaction's entries of a type that creates several at once (none with ``ifNoneExist``, none a
    variant's, none referring to another of them), when there are at least two."""
    if kind != "transaction":
        return []
    out = []
    for rt in resource_types().values():
        if rt.create_group is None:
            continue
        idx = [i for i in order if (entries[i].get("resource") or {}).get("resourceType") == rt.name
               and claimed_by_variant(entries[i]) is None]
        if len(idx) < 2 or any((entries[i].get("request") or {}).get("ifNoneExist") for i in idx) or (
                _refer_to_each_other([entries[i] for i in idx])):
            continue
        out.append((rt, idx))
    return out


def process_bundle(ctx: Context, body: Any) -> dict:
    """The response Bundle of a transaction or batch. ``ctx.minimal`` (``Prefer: return=minimal``): each
    entry has its outcome and location, without the resource."""
    whole = not (isinstance(body, dict) and body.get("type") == "transaction" and isinstance(body.get("entry"), list))
    if whole:
        validate("Bundle", body)  # every entry's resource is validated here, as its own type
    else:
        # A transaction fails as a whole on any invalid entry: its envelope is validated here and each
        # resource on its own as its entry is processed — the same checks, at ~40% of the CPU of
        # validating the resources inside the Bundle model (bench_records.py cpu).
        validate("Bundle", {**body, "entry": [
            {k: v for k, v in e.items() if not (k == "resource" and isinstance(v, dict))} if isinstance(e, dict) else e
            for e in body["entry"]]})
    kind = body.get("type")
    if kind not in ("transaction", "batch"):
        raise BadRequest("只接受 transaction 或 batch 类型的 Bundle / only transaction and batch Bundles are "
                         "accepted", expression=["type"])
    entries = body.get("entry") or []
    order = sorted(range(len(entries)), key=lambda i: _rank(entries[i]))
    ids: dict[str, str] = {}
    results: list[dict | None] = [None] * len(entries)
    groups = _groups(kind, entries, order)
    in_group = {i: (rt, idx) for rt, idx in groups for i in idx}
    keep: list = []  # rows created together, held so later entries find them in the session's identity map
    validated = _IN_VALIDATED_BUNDLE.set(whole)
    try:
        fast = None
        if kind == "transaction" and not any(claimed_by_variant(e) for e in entries):
            for rt in resource_types().values():
                if rt.transaction_shortcut is not None:
                    fast = rt.transaction_shortcut(ctx, entries, ids)
                    if fast is not None:
                        break
        for i, status, out in fast or []:
            results[i] = _response_entry(status, out, ctx.base, ctx.minimal)
        for i in [] if fast else order:
            entry = entries[i]
            if i in in_group:
                rt, idx = in_group[i]
                if i == idx[0]:
                    for j, status, out in rt.create_group(ctx, entries, idx, ids, keep):
                        if entries[j].get("fullUrl"):
                            ids[entries[j]["fullUrl"]] = f"{out['resourceType']}/{out['id']}"
                        results[j] = _response_entry(status, out, ctx.base, ctx.minimal)
                continue
            try:
                if kind == "transaction":
                    status, out = _one_entry(ctx, i, entry, ids)
                else:
                    with ctx.session.begin_nested():
                        status, out = _one_entry(ctx, i, entry, ids)
            except ApiError as e:
                if kind == "transaction":
                    raise entry_error(i, e) from None
                results[i] = {"response": {"status": f"{e.status}", "outcome": operation_outcome(
                    e.message, code=e.code, expression=e.expression)}}
                continue
            if entry.get("fullUrl"):
                ids[entry["fullUrl"]] = f"{out['resourceType']}/{out['id']}"
            results[i] = _response_entry(status, out, ctx.base, ctx.minimal)
    finally:
        _IN_VALIDATED_BUNDLE.reset(validated)
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": results}
