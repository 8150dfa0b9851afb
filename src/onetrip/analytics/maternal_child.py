"""The maternal and child panel (妇幼指标) of the cockpit and its report form: 早孕建册率, 产前检查率, 产后访视率,
3 岁以下儿童系统管理率, 7 岁以下儿童健康管理率, 两癌筛查率 and positives diagnosed in time, for a year or a month
and an institution (or the district), each with numerator and denominator.

The figures come from maternal_child's interface (``mch_figures``: one query per figure family, pure functions,
the definitions are its rule data). The export has the layout of the other report forms (``reports.py``).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.responses import Response
from openpyxl.styles import Alignment, Font
from sqlalchemy.orm import Session

from onetrip.analytics import reports
from onetrip.analytics.reports import NO_DATA_TEXT
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.maternal_child import interface as mch
from onetrip.registry.models import Organization

HEADERS = ("序号\nNo.", "指标\nIndicator", "分子\nNumerator", "分母\nDenominator", "率\nRate", "口径\nConfidence",
           "说明\nNote")
WIDTHS = (6, 34, 12, 12, 12, 10, 40)


def panel(session: Session, *, period: str, organization: str | None = None) -> dict[str, Any]:
    """Everything the panel draws (and the API returns)."""
    if not mch.FIGURES_PERIOD.match(period or ""):
        raise BadRequest("统计期格式为 2026 或 2026-10 / the period must look like 2026 or 2026-10",
                         expression=["period"])
    org_name = None
    if organization:
        org = session.get(Organization, organization)
        if org is None:
            raise NotFound("机构不存在 / organization not found")
        org_name = org.name
    data = mch.mch_figures(session, organization or None, period)
    data["organization_name"] = org_name
    return data


def _scope(data: dict) -> str:
    return data["organization_name"] or "全区"


def title(data: dict) -> str:
    p = data["period"]
    when = f"{p}年" if len(p) == 4 else f"{p[:4]}年{int(p[5:7])}月"
    return f"{_scope(data)} {when}妇幼健康指标报表"


def _lines(data: dict) -> list[list[Any]]:
    out = []
    for f in data["figures"]:
        note = f"{NO_DATA_TEXT}：{f['no_data']['zh']} / {f['no_data']['en']}" if f["no_data"] else ""
        out.append([f"{f['name_zh']} {f['name_en']}", f["numerator"], f["denominator"], f["rate"], f["confidence"],
                    note])
    return out


def to_xlsx(data: dict, generated: str) -> bytes:
    wb, ws, last_col = reports.form_sheet(
        "妇幼 MCH", title(data), f"统计期 Period: {data['from']} – {data['to']}    生成时间 Generated: {generated}",
        HEADERS)
    lines = _lines(data)
    for n, line in enumerate(lines, 1):
        for c, v in enumerate([n, *line], 1):
            cell = ws.cell(row=3 + n, column=c, value=v)
            cell.border = reports.BORDER
            cell.font = Font(name="SimSun", size=10)
            cell.alignment = Alignment(vertical="center", wrap_text=c in (2, 7),
                                       horizontal="left" if c in (2, 7) else "center")
            if c == 5 and v is not None:
                cell.number_format = "0.00%"
    return reports.finish_form(
        wb, ws, last_col=last_col, rows=len(lines), note_height=54, widths=WIDTHS, freeze="C4",
        note=("说明：早孕建册率 = 孕13周前建册数 ÷ 本期建册数；产前检查率 = 产前检查≥5次（建册检查计一次）的分娩数 ÷ 本期分娩数；"
              "产后访视率 = 出院7天内产后访视的分娩数 ÷ 本期分娩数；儿童管理率 = 本期应查体检均已完成的儿童 ÷ 本期有应查体检的"
              "建档儿童（平台口径 U，官方公式原文未核对）；两癌筛查率 = 已筛查 ÷ 应筛（全部筛查活动）。 "
              "The child rates and the 两癌 figures are platform definitions (U)."))


def to_csv(data: dict) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([title(data)])
    w.writerow(["indicator", "key", "numerator", "denominator", "rate", "confidence", "note"])
    for f, line in zip(data["figures"], _lines(data), strict=True):
        w.writerow([line[0], f["key"], *line[1:]])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def export(data: dict, fmt: str) -> Response:
    """The report form as a download (xlsx or csv)."""
    return reports.form_download(fmt, f"maternal_child_{data['period']}", lambda stamp: to_xlsx(data, stamp),
                                 lambda: to_csv(data))
