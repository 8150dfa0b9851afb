"""Worklist export as CSV (UTF-8 with BOM so Excel opens Chinese correctly) or xlsx (openpyxl, already a
dependency). Rows come from ``service.worklist``, whose names, ID numbers and phones are masked."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from fastapi.responses import Response

COLUMNS = [("name", "姓名 Name"), ("id_number", "身份证号 ID"), ("phone", "电话 Phone"), ("age", "年龄 Age"),
           ("programme", "项目 Programme"), ("last_visit", "上次随访 Last visit"), ("next_due", "应随访 Due"),
           ("days_overdue", "逾期天数 Days overdue"), ("bucket", "状态 Status"),
           ("classification", "分类 Classification"), ("alerts", "提醒 Alerts")]


def rows(items: Sequence[dict]) -> list[list]:
    return [[i.get(k) if i.get(k) is not None else "" for k, _ in COLUMNS] for i in items]


def to_csv(items: Sequence[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([h for _, h in COLUMNS])
    w.writerows(rows(items))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(items: Sequence[dict]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("worklist")
    ws.append([h for _, h in COLUMNS])
    for r in rows(items):
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def response(items: Sequence[dict], fmt: str, name: str) -> Response:
    if fmt == "xlsx":
        return Response(to_xlsx(items), media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return Response(to_csv(items), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
