"""``onetrip mpi`` — the master patient index in batch: train a model, re-link the registry, de-duplicate
a CSV file (issue 3 §3). Registered in ``cli.main`` with ``app.add_typer(mpi_app, name="mpi")``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

mpi_app = typer.Typer(help="主索引 / master patient index: train, relink, dedupe", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]错误 / error:[/] {message}")
    raise typer.Exit(code)


class _Bars:
    """Rich progress bars fed by the services' ``progress(step, done, total)`` callback."""

    def __init__(self) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=err)
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.tasks[step], completed=done, total=total)


def _db_or_fail():
    from onetrip.db.session import unit_of_work

    return unit_of_work()


@mpi_app.command("train")
def train(
    demo_residents: Annotated[int, typer.Option(help="train on the synthetic district of this size instead of the registry")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the synthetic district")] = 42,
    max_pairs: Annotated[float, typer.Option(help="random pairs sampled to estimate u")] = 2e6,
    out: Annotated[Path | None, typer.Option(help="also write the model JSON to this file")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="save as a new model version in the database")] = True,
) -> None:
    """训练匹配模型 / estimate a new model with Splink (u by random sampling, m by EM over several blocking
    rules) and save it as a new version (used online from the next write)."""
    from onetrip.demo import mpi as demo_mpi
    from onetrip.identity import batch, mpi

    if demo_residents < 0 or demo_residents > 5_000_000:
        fail("--demo-residents 应在 0 到 5,000,000 之间 / --demo-residents must be between 0 and 5,000,000")
    with _Bars() as bars:
        if demo_residents:
            bars("训练 / training (Splink, DuckDB)", 0, 1)
            model, info = demo_mpi.train_from_demo(seed, demo_residents, max_pairs=max_pairs)
            bars("训练 / training (Splink, DuckDB)", 1, 1)
        else:
            try:
                with _db_or_fail() as s:
                    model, info = batch.train_from_registry(s, max_pairs=max_pairs, progress=bars)
            except ValueError as e:
                fail(str(e))
    if out is not None:
        out.write_text(json.dumps(model, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        console.print(f"模型已写入 / model written to {out}")
    if save:
        with _db_or_fail() as s:
            row = mpi.save_model(s, model, by="cli", training=info)
            version = row.version
        console.print(f"[green]新模型版本 / new model version v{version}[/] ({info['records']:,} records, "
                      f"{info['seconds']} s)")
    else:
        console.print(f"[green]模型已训练 / model trained[/] ({info['records']:,} records, {info['seconds']} s)")


@mpi_app.command("relink")
def relink() -> None:
    """全库重新匹配 / re-link the whole registry with the current model: changes become links (a single
    record joining a person, reversible) or review items — never silent merges."""
    from onetrip.identity import batch
    from onetrip.kit.principal import cli_principal

    with _Bars() as bars, _db_or_fail() as s:
        summary = batch.relink(s, cli_principal("mpi-relink"), progress=bars)
    console.print(f"[green]重新匹配完成 / relink done[/] in {summary.seconds} s: {summary.records:,} records, "
                  f"{summary.pairs_scored:,} pairs ≥ review threshold, {summary.links:,} links, "
                  f"{summary.reviews:,} new review items, {summary.skipped_not_a_match:,} not-a-match skipped, "
                  f"{summary.skipped_known:,} already queued")


@mpi_app.command("dedupe")
def dedupe(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="record_id,source,name,sex,birth_date,id_number,phone,address")],
    out: Annotated[Path, typer.Option("--out", help="OUTPUT.csv: record_id,person_id")],
    model: Annotated[Path | None, typer.Option(help="a model JSON (default: the packaged model)")] = None,
    threshold: Annotated[float | None, typer.Option(help="match weight to join records (default: the mpi link_threshold)")] = None,
) -> None:
    """文件去重 / de-duplicate a CSV file of registrations: one output row per input record with the
    person it belongs to. Bad values are reported (line, field) and treated as missing, never dropped."""
    from onetrip.identity import batch, mpi
    from onetrip.identity.matching import Model

    if not input_csv.is_file():
        fail(f"找不到输入文件 / input file not found: {input_csv}")
    try:
        text = input_csv.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        fail(f"输入须为 UTF-8 编码 / the input must be UTF-8: {e}")
    try:
        model_json = json.loads(model.read_text(encoding="utf-8")) if model else mpi.default_model_json()
        Model.from_splink(model_json)
    except (OSError, ValueError, KeyError) as e:
        fail(f"模型文件无效 / invalid model file: {e}")
    try:
        rows, problems = batch.read_csv(text)
    except batch.CsvError as e:
        fail(str(e))
    link = threshold if threshold is not None else mpi.DEFAULT_THRESHOLDS["link_threshold"]
    with _Bars() as bars:
        result = batch.dedupe(rows, model_json, link_threshold=link, progress=bars)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write("record_id,person_id\n")
        w = csv.writer(fh)
        w.writerows(result.assignments)
    tmp.replace(out)
    for p in problems:
        err.print(f"[yellow]第 {p.line} 行 / line {p.line}[/] ({p.record_id}) {p.field}: {p.message}")
    console.print(f"[green]完成 / done[/]: {len(rows):,} records → {result.persons:,} persons "
                  f"({result.pairs_scored:,} pairs ≥ {link}); {len(problems)} value problems reported, "
                  f"rows kept with those values treated as missing")
