"""The synthetic district as training data for the master patient index (``onetrip mpi train --demo-residents``,
tests and bench/bench_mpi.py). It lives with the demo, above identity: identity never imports the generator."""

from __future__ import annotations

import time
from typing import Any

from onetrip.demo.synth import generate_district
from onetrip.identity import matching, splink_model
from onetrip.identity.splink_model import UID


def demo_rows(seed: int, residents: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Feature rows from the synthetic district (``demo.synth``) and their ground truth (resident index)."""
    rows: list[dict[str, Any]] = []
    truth: list[int] = []
    for res in generate_district(seed, residents).iter_residents():
        for r in res.records:
            f = matching.features(name=r.name, birth_date=r.birth_date, sex=r.sex, id_number=r.id_number,
                                  phone=r.phone, district=r.district, street=r.street, address_line=r.address_line)
            rows.append({UID: str(len(rows)), **f.as_row()})
            truth.append(r.resident_index)
    return rows, truth


def train_from_demo(seed: int, residents: int, *, max_pairs: float = 2e6) -> tuple[dict, dict]:
    started = time.perf_counter()
    rows, _ = demo_rows(seed, residents)
    model = splink_model.train(splink_model.frame(rows), max_pairs=max_pairs)
    return model, {"source": "demo", "seed": seed, "residents": residents, "records": len(rows),
                   "seconds": round(time.perf_counter() - started, 1)}
