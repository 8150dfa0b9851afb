"""``onetrip family ...`` — the daily family-doctor jobs and views: expire contracts (run daily from cron
or a systemd timer), a team's worklist (masked), the figures (R3.6, R5.3), and a device token."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

family_app = typer.Typer(help="家庭医生签约与慢病管理 / family doctors: contracts, chronic care, figures",
                         no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]错误 / error:[/] {message}")
    raise typer.Exit(2)


def _team(session, institution: str, code: str):
    from sqlalchemy import select

    from onetrip.family.models import Team
    from onetrip.registry.models import Organization

    org_id = session.scalar(select(Organization.id).where(Organization.code == institution))
    if org_id is None:
        _fail(f"机构代码不存在 / no institution with code {institution!r} (see `onetrip` directory or /ui/directory)")
    team = session.scalars(select(Team).where(Team.organization_id == org_id, Team.code == code)).first()
    if team is None:
        _fail(f"团队不存在 / no team {code!r} at {institution} (team codes: FD1, FD2, ... in the demo)")
    return team


@family_app.command("expire-contracts")
def expire_contracts() -> None:
    """关闭已到期的签约 / close active contracts whose term has ended (daily job; emits contract.ended)."""
    from onetrip.db.session import unit_of_work
    from onetrip.family.contracts import expire_contracts as expire
    from onetrip.kit.principal import cli_principal

    with unit_of_work() as s:
        n = expire(s, cli_principal("family-expire"))
    console.print(f"[green]到期签约 / expired contracts:[/] {n}")


@family_app.command("worklist")
def worklist(
    institution: Annotated[str, typer.Option(help="机构代码 / institution code, e.g. BC01")],
    team: Annotated[str, typer.Option(help="团队编码 / team code, e.g. FD1")],
    only: Annotated[str, typer.Option(help="due | overdue | lost")] = "overdue",
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 50,
) -> None:
    """团队随访清单（姓名、证件号、电话已脱敏）/ a team's follow-up worklist, masked."""
    from onetrip.db.session import unit_of_work
    from onetrip.family.worklist.service import build
    from onetrip.kit.principal import cli_principal

    if only not in ("due", "overdue", "lost"):
        _fail("--only 应为 due / overdue / lost / --only must be due, overdue or lost")
    with unit_of_work() as s:
        t = _team(s, institution, team)
        data = build(s, cli_principal("family-worklist"), team_id=t.id, only=only, limit=limit)
    c = data["counts"]
    table = Table(title=f"{t.name} · {only} · {data['on']} (在管 {c['managed']}, 逾期 {c['overdue']}, 失访 {c['lost']})")
    for col in ("姓名 name", "证件 ID", "电话 phone", "项目", "上次 last", "应随访 due", "逾期天 days"):
        table.add_column(col)
    for i in data["items"]:
        table.add_row(i["name"], i["id_number"], i["phone"], i["programme"], i["last_visit"] or "—",
                      i["next_due"] or "—", str(i["days_overdue"]))
    console.print(table)


@family_app.command("figures")
def figures(
    year: Annotated[int | None, typer.Option(min=2000, max=2200, help="年度 / calendar year (default: this one)")] = None,
    level: Annotated[str, typer.Option(help="institution | team | doctor")] = "institution",
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON / print JSON")] = False,
) -> None:
    """签约率、管理率、规范管理率、控制率 / contract, management, standard-management and control rates."""
    from onetrip.db.session import unit_of_work
    from onetrip.family.figures.service import compute_figures
    from onetrip.kit.principal import cli_principal

    if level not in ("institution", "team", "doctor"):
        _fail("--level 应为 institution / team / doctor")
    with unit_of_work() as s:
        data = compute_figures(s, cli_principal("family-figures"), year=year, level=level)
    if as_json:
        console.print_json(json.dumps(data, ensure_ascii=False))
        return

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v * 100:.1f}%"

    con = data["contracts"]
    console.print(f"[bold]{data['year']}[/] ({data['start']} – {data['end']})  签约率 contract rate: "
                  f"{pct(con['contract_rate'])} ({con['contracted']:,}/{con['population']:,})")
    for g, v in con["key_groups"].items():
        if v["population"]:
            console.print(f"  {g}: {pct(v['contract_rate'])} ({v['contracted']:,}/{v['population']:,})")
    table = Table(title="两慢病 / hypertension & diabetes (R3.6)")
    for col in ("项目 programme", "在管 managed", "管理率", "规范管理率", "控制率"):
        table.add_column(col)
    for prog, v in data["programmes"].items():
        t = v["total"]
        table.add_row(prog, f"{t['managed']:,}", pct(t["management_rate"]), pct(t["standard_rate"]),
                      pct(t["control_rate"]))
    console.print(table)


@family_app.command("device-token")
def device_token(
    serial: Annotated[str, typer.Option(help="设备序列号 / device serial")],
    institution: Annotated[str | None, typer.Option(help="自助机所在机构代码 / kiosk: institution code")] = None,
    id_number: Annotated[str | None, typer.Option(help="家用设备：居民身份证号 / home device: owner's ID")] = None,
    kind: Annotated[str, typer.Option(help="bp | glucose | both")] = "both",
) -> None:
    """登记自测设备并显示一次令牌 / register a BP monitor, glucometer or kiosk; prints its token once."""
    from sqlalchemy import select

    from onetrip.db.session import unit_of_work
    from onetrip.family.readings import register_device
    from onetrip.kit.errors import ApiError
    from onetrip.kit.principal import cli_principal
    from onetrip.persons.models import Person
    from onetrip.registry.models import Organization

    if (institution is None) == (id_number is None):
        _fail("请给出 --institution（自助机）或 --id-number（家用设备）之一 / give --institution or --id-number")
    with unit_of_work() as s:
        person_id = org_id = None
        if institution:
            org_id = s.scalar(select(Organization.id).where(Organization.code == institution))
            if org_id is None:
                _fail(f"机构代码不存在 / no institution with code {institution!r}")
        else:
            person_id = s.scalar(select(Person.id).where(Person.id_number == (id_number or "").upper()))
            if person_id is None:
                _fail("未找到该居民 / no resident with this ID number")
        try:
            d, token = register_device(s, cli_principal("family-device"), kind=kind, serial=serial,
                                       person_id=person_id, organization_id=org_id)
        except ApiError as e:
            _fail(e.message)
    console.print(f"[green]设备已登记 / device registered:[/] {d.id}\n令牌（仅显示一次）/ token (shown once): {token}")


