"""Identity review (患者主索引复核) at /ui/mpi: the queue of possible duplicates the master patient index
could not decide alone, a side-by-side comparison, the reviewer's decision (link, merge, not a match)
and the list of merges with unmerge. Admins only (the deployment's identity stewards); every comparison
and decision is audited by the identity service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from onetrip.api.deps import DB, CurrentPrincipal
from onetrip.api.web import check_origin, html_errors, page
from onetrip.identity import mpi
from onetrip.identity.models import MatchReview, PersonMerge
from onetrip.kit.errors import Forbidden
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Organization

router = APIRouter(prefix="/ui/mpi", include_in_schema=False)
PAGE = 50


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("只有管理员可以复核患者身份 / only admins review patient identities")


@router.get("/review")
@html_errors
def review_queue(request: Request, session: DB, principal: CurrentPrincipal, status: str = "open",
                 page_no: int = 1) -> Response:
    _require_admin(principal)
    status = status if status in ("open", "linked", "merged", "not_a_match", "closed") else "open"
    page_no = max(1, page_no)
    items = mpi.list_review_items(session, status=status, limit=PAGE, offset=(page_no - 1) * PAGE)
    total = session.scalar(select(func.count()).select_from(MatchReview).where(MatchReview.status == status)) or 0
    recs = {r.id: r for r in session.scalars(select(PatientRecord).where(
        PatientRecord.id.in_({i.record_id for i in items} | {i.candidate_record_id for i in items
                                                             if i.candidate_record_id})))}
    orgs = {o.id: o for o in session.scalars(select(Organization))}
    return page(request, "mpi_queue.html", session=session, principal=principal, items=items, recs=recs,
                orgs=orgs, queue_status=status, total=total, page_no=page_no,
                pages=max(1, (total + PAGE - 1) // PAGE))


@router.get("/review/{item_id}")
@html_errors
def review_item(item_id: str, request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    _require_admin(principal)
    comparison = mpi.compare(session, principal, item_id)  # audited read of both records
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_([comparison.left.organization_id, comparison.right.organization_id])))}
    return page(request, "mpi_compare.html", session=session, principal=principal, c=comparison, orgs=orgs)


@router.post("/review/{item_id}/decide")
@html_errors
def review_decide(item_id: str, request: Request, session: DB, principal: CurrentPrincipal,
                  decision: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "") -> Response:
    _require_admin(principal)
    check_origin(request)
    mpi.decide(session, principal, item_id, decision, reason=reason.strip()[:255] or None)
    return RedirectResponse("/ui/mpi/review?decided=1", status_code=303)


@router.get("/merges")
@html_errors
def merges(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    _require_admin(principal)
    rows = list(session.scalars(select(PersonMerge).order_by(PersonMerge.merged_at.desc()).limit(100)))
    return page(request, "mpi_merges.html", session=session, principal=principal, merges=rows)


@router.post("/merges/{merge_id}/unmerge")
@html_errors
def unmerge(merge_id: str, request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    _require_admin(principal)
    check_origin(request)
    mpi.unmerge(session, principal, merge_id)
    return RedirectResponse("/ui/mpi/merges?undone=1", status_code=303)
