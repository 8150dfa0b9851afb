"""Report forms that fill themselves (数据多跑路，基层少填报): monthly and quarterly, one per institution
plus one for the district, as Excel (openpyxl, laid out for printing: title, units, borders, column
widths, print area, A4 landscape) and CSV (UTF-8 with BOM so Excel opens the Chinese correctly).

Generated on demand (web button, API, ``onetrip analytics report``) and on schedule
(``onetrip analytics schedule``: last month's and, after a quarter ends, last quarter's forms when
missing — idempotent). Every file is kept in ``analytics_report``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.analytics import service
from onetrip.analytics.formulas import NEW
from onetrip.analytics.indicators import INDICATORS, ORGANIZATION, Indicator, basis
from onetrip.analytics.models import AnalyticsReport
from onetrip.kit.clock import LOCAL_TZ, utcnow
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.registry.models import Organization

KINDS = ("monthly", "quarterly")
DISTRICT = "district"
HEADERS = ("序号\nNo.", "指标\nIndicator", "单位\nUnit", "分子\nNumerator", "分母\nDenominator", "本期\nThis period",
           "去年同期\nSame period last year", "同比\nYear on year", "目标\nTarget", "依据\nBasis")
WIDTHS = (6, 34, 10, 12, 12, 12, 14, 12, 10, 40)
UNIT_LABEL = {"count": "人次 / count", "ratio": "%", "days": "天 / days"}


def last_period(kind: str, today: dt.date) -> str:
    """The last complete month (2026-10) or quarter (2026-Q3) before ``today``."""
    if kind not in KINDS:
        raise BadRequest("kind 须为 monthly 或 quarterly / kind must be monthly or quarterly", expression=["kind"])
    prev = today.replace(day=1) - dt.timedelta(days=1)
    if kind == "monthly":
        return f"{prev.year}-{prev.month:02d}"
    q_start = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last = q_start - dt.timedelta(days=1)
    return f"{last.year}-Q{(last.month + 2) // 3}"


def _check_period(kind: str, period: str) -> tuple[dt.date, dt.date]:
    if kind not in KINDS:
        raise BadRequest("kind 须为 monthly 或 quarterly / kind must be monthly or quarterly", expression=["kind"])
    if (kind == "monthly") != (len(period) == 7 and "-Q" not in period):
        raise BadRequest(f"{kind} 报表的统计期格式不对 / period {period!r} does not fit a {kind} report "
                         "(monthly: 2026-10, quarterly: 2026-Q4)", expression=["period"])
    return service.period_bounds(period)


def rows_for(session: Session, start: dt.date, end: dt.date, organization_id: str | None) -> list[dict[str, Any]]:
    """One line per indicator that applies to the scope (institution forms skip district-only ones)."""
    targets = service.targets(session)
    f = service.Filters(organization_id=organization_id)
    inds = [i for i in INDICATORS if not organization_id or ORGANIZATION in i.dimensions]
    return [{"indicator": ind, **t} for ind, t in zip(inds, service.tiles(session, inds, start, end, f, targets),
                                                       strict=True)]


def _title(scope_name: str, kind: str, period: str) -> str:
    when = f"{period[:4]}年{int(period[5:7])}月" if kind == "monthly" else f"{period[:4]}年第{period[-1]}季度"
    return f"{scope_name} {when}{'指标月报表' if kind == 'monthly' else '指标季报表'}"


NEW_TEXT = "新增 new"  # growth from nothing: no percentage (issue 25)
NO_DATA_TEXT = "无数据 no data"


def _change_text(r: dict) -> str:
    c = r["change"]
    if r["change_kind"] == NEW:
        return NEW_TEXT
    if c is None:
        return ""
    return f"{c * 100:+.2f}%" if r["change_kind"] == "relative" else f"{c * 100:+.2f} 个百分点 pp"


BORDER = Border(left=Side(style="thin", color="000000"), right=Side(style="thin", color="000000"),
                top=Side(style="thin", color="000000"), bottom=Side(style="thin", color="000000"))


def form_sheet(sheet_title: str, title: str, subtitle: str, headers: tuple[str, ...]) -> tuple[Workbook, Any, str]:
    """A report form's workbook: row 1 the title, row 2 the subtitle (right), row 3 the column headers; rows
    from 4 are the caller's. Returns the workbook, its sheet and the last column's letter."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet_title
    last_col = get_column_letter(len(headers))
    ws.merge_cells(f"A1:{last_col}1")
    ws["A1"] = title
    ws["A1"].font = Font(name="SimSun", size=16, bold=True)
    ws["A1"].alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 30
    ws.merge_cells(f"A2:{last_col}2")
    ws["A2"] = subtitle
    ws["A2"].font = Font(name="SimSun", size=10)
    ws["A2"].alignment = Alignment(horizontal="right")
    for c, h in enumerate(headers, 1):
        cell = ws.cell(row=3, column=c, value=h)
        cell.font = Font(name="SimSun", size=10, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.border = BORDER
    ws.row_dimensions[3].height = 32
    return wb, ws, last_col


def finish_form(wb: Workbook, ws: Any, *, last_col: str, rows: int, note: str, note_height: int,
                widths: tuple[int, ...], freeze: str) -> bytes:
    """The form's foot (a note two rows below the ``rows`` data rows, the signature line) and its print set-up
    (A4 landscape, one page wide, header row repeated, page numbers); the workbook's bytes."""
    note_row = 3 + rows + 2
    ws.merge_cells(f"A{note_row}:{last_col}{note_row}")
    ws[f"A{note_row}"] = note
    ws[f"A{note_row}"].font = Font(name="SimSun", size=9, italic=True)
    ws[f"A{note_row}"].alignment = Alignment(wrap_text=True)
    ws.row_dimensions[note_row].height = note_height
    sign = note_row + 1
    ws[f"A{sign}"] = "填报单位（盖章）："
    ws[f"F{sign}"] = "负责人："
    ws[f"H{sign}"] = "制表人："
    for i, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = freeze
    ws.print_area = f"A1:{last_col}{sign}"
    ws.print_title_rows = "3:3"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.print_options.horizontalCentered = True
    ws.oddFooter.center.text = "第 &P 页 / 共 &N 页"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_xlsx(title: str, subtitle: str, rows: list[dict]) -> bytes:
    wb, ws, last_col = form_sheet("指标 Indicators", title, subtitle, HEADERS)
    border = BORDER
    for n, r in enumerate(rows, 1):
        ind: Indicator = r["indicator"]
        pct = "0.00%" if ind.unit == "ratio" else ("0.0" if ind.unit == "days" else "#,##0")
        why = r.get("no_data")
        value = r["value"] if why is None else f"{NO_DATA_TEXT}：{why['zh']}"
        values = [n, f"{ind.name_zh}\n{ind.name_en}", UNIT_LABEL[ind.unit], r["numerator"], r["denominator"],
                  value, r["previous"], _change_text(r), r["target"], "\n".join(basis(ind))]
        row = 3 + n
        for c, v in enumerate(values, 1):
            cell = ws.cell(row=row, column=c, value=v)
            cell.border = border
            cell.font = Font(name="SimSun", size=10)
            cell.alignment = Alignment(vertical="center", wrap_text=c in (2, 6, 10),
                                       horizontal="left" if c in (2, 10) else "center")
            if c in (6, 7, 9) and isinstance(v, int | float):
                cell.number_format = pct
            elif c in (4, 5):
                cell.number_format = "#,##0"
        ws.row_dimensions[row].height = 45
    return finish_form(wb, ws, last_col=last_col, rows=len(rows), note_height=28, widths=WIDTHS, freeze="C4",
                       note=("说明：数据由平台自动汇总（日事实表），无需手工填报；标 U 的指标口径为平台默认，可由管理员调整。 "
                             "Figures are computed by the platform from daily facts; definitions marked U are defaults."))


def to_csv(title: str, rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([title])
    w.writerow(["indicator_id", "指标", "indicator", "unit", "numerator", "denominator", "value",
                "previous_year", "change", "change_kind", "target", "依据 basis", "说明 note"])
    for r in rows:
        ind: Indicator = r["indicator"]
        why = r.get("no_data")
        change = NEW_TEXT if r["change_kind"] == NEW else r["change"]
        note = f"{NO_DATA_TEXT}：{why['zh']} / {why['en']}" if why else ""
        w.writerow([ind.id, ind.name_zh, ind.name_en, ind.unit, r["numerator"], r["denominator"], r["value"],
                    r["previous"], change, r["change_kind"], r["target"], basis(ind)[0], note])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _store(session: Session, kind: str, period: str, scope: str, fmt: str, filename: str, content: bytes,
           by: str, replace: bool) -> AnalyticsReport | None:
    existing = session.scalars(select(AnalyticsReport).where(
        AnalyticsReport.kind == kind, AnalyticsReport.period == period, AnalyticsReport.scope == scope,
        AnalyticsReport.fmt == fmt)).first()
    if existing is not None and not replace:
        return None
    row = existing or AnalyticsReport(kind=kind, period=period, scope=scope, fmt=fmt)
    row.filename, row.content, row.sha256 = filename, content, hashlib.sha256(content).hexdigest()
    row.generated_at, row.generated_by = utcnow(), by[:64]
    if existing is None:
        session.add(row)
    session.flush()
    return row


def generate(session: Session, *, kind: str, period: str, by: str, replace: bool = False,
             organization_ids: list[str] | None = None) -> list[AnalyticsReport]:
    """Generate the district form and one per institution (all but the bureau) in both formats.
    Existing files are kept (idempotent) unless ``replace``. Returns the rows written."""
    start, end = _check_period(kind, period)
    orgs = list(session.scalars(select(Organization).where(Organization.org_type != "bureau")
                                .order_by(Organization.code)))
    if organization_ids is not None:
        orgs = [o for o in orgs if o.id in organization_ids]
    made = []
    stamp = dt.datetime.now(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    for scope, code, name in [(DISTRICT, "district", "全区")] + [(o.id, o.code, o.name) for o in orgs]:
        title = _title(name, kind, period)
        subtitle = f"统计期 Period: {start.isoformat()} — {end.isoformat()}    生成时间 Generated: {stamp}"
        rows = rows_for(session, start, end, None if scope == DISTRICT else scope)
        base = f"{period}_{code}_{kind}"
        for fmt, content in (("xlsx", to_xlsx(title, subtitle, rows)), ("csv", to_csv(title, rows))):
            r = _store(session, kind, period, scope, fmt, f"{base}.{fmt}", content, by, replace)
            if r is not None:
                made.append(r)
    return made


def scheduled(session: Session, today: dt.date) -> list[AnalyticsReport]:
    """The scheduled job: last month's forms, and last quarter's right after a quarter ends, when
    missing. Running it again the same day does nothing."""
    made = generate(session, kind="monthly", period=last_period("monthly", today), by="schedule")
    if today.month in (1, 4, 7, 10):
        made += generate(session, kind="quarterly", period=last_period("quarterly", today), by="schedule")
    return made


def archive(session: Session, *, limit: int = 100) -> list[AnalyticsReport]:
    return list(session.scalars(select(AnalyticsReport).order_by(
        AnalyticsReport.period.desc(), AnalyticsReport.generated_at.desc(), AnalyticsReport.filename).limit(limit)))


def get(session: Session, report_id: str) -> AnalyticsReport:
    r = session.get(AnalyticsReport, report_id)
    if r is None:
        raise NotFound(f"报表不存在 / report {report_id!r} not found")
    return r


def folder(r: AnalyticsReport) -> str:
    """Where a form is filed: year / month (or quarter) / form — ``2026/10/monthly``, ``2026/Q4/quarterly`` —
    so a year of forms is not one flat folder of hundreds of files (issue 25)."""
    sub = r.period[5:] if r.kind == "monthly" else r.period[-2:]
    return str(PurePosixPath(r.period[:4], sub, r.kind))


def write_file(out: Path, r: AnalyticsReport) -> Path:
    """Write a form under ``out`` in its folder (``folder``); returns the path written."""
    path = out.joinpath(*folder(r).split("/"), r.filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(r.content)
    return path


def filed(rows: list[AnalyticsReport]) -> list[tuple[str, list[AnalyticsReport]]]:
    """The archive grouped by folder, newest period first (the archive page's sections)."""
    groups: dict[str, list[AnalyticsReport]] = {}
    for r in rows:
        groups.setdefault(folder(r), []).append(r)
    return sorted(groups.items(), key=lambda kv: kv[0], reverse=True)


def describe(r: AnalyticsReport) -> dict:
    return {"id": r.id, "kind": r.kind, "period": r.period, "scope": r.scope, "format": r.fmt,
            "filename": r.filename, "folder": folder(r), "size": len(r.content), "sha256": r.sha256,
            "generated_at": r.generated_at.isoformat(), "generated_by": r.generated_by,
            "url": f"/api/reports/{r.id}"}


MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8"}


FORM_FORMATS = ("xlsx", "csv")


def form_download(fmt: str, name: str, xlsx: Callable[[str], bytes], as_csv: Callable[[], bytes]) -> Response:
    """An on-demand report form as a download: ``xlsx(generated_at)`` or ``as_csv()``; ``name`` without the
    extension. 400 for another format."""
    if fmt not in FORM_FORMATS:
        raise BadRequest("format 须为 xlsx 或 csv / format must be xlsx or csv", expression=["format"])
    content = xlsx(dt.datetime.now(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")) if fmt == "xlsx" else as_csv()
    return Response(content, media_type=MEDIA[fmt], headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(f'{name}.{fmt}')}", "Cache-Control": "no-store"})


def file_response(r: AnalyticsReport) -> Response:
    return Response(r.content, media_type=MEDIA[r.fmt], headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(r.filename)}", "Cache-Control": "no-store"})
