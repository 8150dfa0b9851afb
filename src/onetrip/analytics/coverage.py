"""The coverage panel (接种率 / Vaccination coverage) of the cockpit and its report form: 累计接种率 and 及时接种率
per vaccine dose × township × birth cohort, with numerators and denominators.

The figures come from immunization's interface (``interface.coverage``: one query over the children and their
doses, pure functions for the rates — the definitions are immunization's rule data), computed when asked: they
are a stock on a date (the assessment date), not a flow of events. The export has the layout of the other report
forms (``reports.py``): Excel laid out for printing and CSV with a BOM.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from fastapi.responses import Response
from openpyxl.styles import Alignment, Font
from sqlalchemy.orm import Session

from onetrip.analytics import reports
from onetrip.immunization import interface as immunization
from onetrip.kit.clock import MAX_SERVICE_DATE, MIN_SERVICE_DATE
from onetrip.kit.errors import BadRequest

UNKNOWN_LABEL = "未知 / unknown"
HEADERS = ("序号\nNo.", "疫苗剂次\nVaccine dose", "乡镇/街道\nTownship", "出生队列\nBirth cohort",
           "累计接种数\nVaccinated", "应种数\nEligible", "累计接种率\nCumulative rate",
           "及时接种数\nOn time", "应及时接种数\nDue by age", "及时接种率\nTimely rate")
WIDTHS = (6, 14, 22, 12, 12, 12, 12, 12, 14, 12)


def check_date(day: dt.date) -> dt.date:
    if not MIN_SERVICE_DATE <= day <= MAX_SERVICE_DATE:
        raise BadRequest("评估日期超出范围 / the assessment date is out of range", expression=["date"])
    return day


def township_label(t: str) -> str:
    return UNKNOWN_LABEL if t == "unknown" else t


def panel(session: Session, *, assessed: dt.date, cohort: str | None = None, township: str | None = None,
          by: str = "year") -> dict[str, Any]:
    """Everything the panel draws (and the API returns): one row per dose × township × cohort, plus the
    district totals per dose and cohort (over the township filter)."""
    res = immunization.coverage(session, assessed=check_date(assessed), cohort=cohort or None,
                                township=township or None, by=by)
    totals = immunization.coverage_totals(res.cells)
    return {"date": assessed.isoformat(), "cohort": cohort or None, "township": township or None, "by": res.by,
            "doses": res.doses, "townships": res.townships, "cohorts": res.cohorts,
            "rows": [c.as_dict() for c in res.cells], "totals": [c.as_dict() for c in totals]}


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v * 100:.2f}%"


def _lines(data: dict) -> list[list[Any]]:
    out = []
    for r in data["rows"]:
        c, t = r["cumulative"], r["timely"]
        out.append([r["dose"], township_label(r["township"]), r["cohort"], c["numerator"], c["denominator"],
                    c["rate"], t["numerator"], t["denominator"], t["rate"]])
    return out


def title(data: dict) -> str:
    cohort = f"{data['cohort']}出生队列" if data["cohort"] else "近七年出生队列"
    return f"全区 {cohort}疫苗接种率报表（截至 {data['date']}）"


def to_xlsx(data: dict, generated: str) -> bytes:
    town = township_label(data["township"]) if data["township"] else "全部 all"
    wb, ws, last_col = reports.form_sheet(
        "接种率 Coverage", title(data), f"评估日期 Assessed: {data['date']}    乡镇 Township: {town}    "
        f"生成时间 Generated: {generated}", HEADERS)
    border = reports.BORDER
    lines = _lines(data)
    for n, line in enumerate(lines, 1):
        row = 3 + n
        for c, v in enumerate([n, *line], 1):
            cell = ws.cell(row=row, column=c, value=v)
            cell.border = border
            cell.font = Font(name="SimSun", size=10)
            cell.alignment = Alignment(vertical="center", horizontal="left" if c in (2, 3) else "center")
            if c in (7, 10) and v is not None:
                cell.number_format = "0.00%"
            elif c in (5, 6, 8, 9):
                cell.number_format = "#,##0"
    return reports.finish_form(
        wb, ws, last_col=last_col, rows=len(lines), note_height=40, widths=WIDTHS, freeze="B4",
        note=("说明：累计接种率 = 评估日前已接种该剂次的儿童 ÷ 已达该剂次起始月龄的儿童；及时接种率 = 在完成月龄前（无完成月龄者："
              "起始月龄后规定期限内）接种的儿童 ÷ 已过该月龄的儿童。口径为平台默认（U），作废记录不计。 "
              "Definitions are platform defaults (U); entered-in-error doses do not count."))


def to_csv(data: dict) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([title(data)])
    w.writerow(["dose", "township", "cohort", "cumulative_numerator", "cumulative_denominator", "cumulative_rate",
                "timely_numerator", "timely_denominator", "timely_rate"])
    for line in _lines(data):
        w.writerow(line)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def export(data: dict, fmt: str) -> Response:
    """The report form as a download (xlsx or csv)."""
    return reports.form_download(fmt, f"coverage_{data['date']}{'_' + data['cohort'] if data['cohort'] else ''}",
                                 lambda stamp: to_xlsx(data, stamp), lambda: to_csv(data))
