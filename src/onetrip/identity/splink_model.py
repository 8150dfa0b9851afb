"""Batch linkage with Splink 5 on DuckDB (issue 3 §3): training, scoring many pairs, clustering.

The comparison levels are generated from ``matching.COMPARISONS`` so Splink and the online scorer compare
exactly the same things. Character-level name distance runs as a DuckDB Python function calling rapidfuzz
on ``str`` (DuckDB's own ``levenshtein`` counts UTF-8 bytes). Heavy imports (splink, duckdb, pandas)
happen inside the functions so the web process does not pay for them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from onetrip.identity import matching
from onetrip.identity.normalize import char_distance

UID = "unique_id"

# u by random sampling, m by EM over several blocking rules (each estimates the comparisons it does not
# block on), λ from the share of pairs that agree on the resident ID, with an assumed recall.
EM_BLOCKING = (("birth_date",), ("pinyin",), ("phone",), ("id_number",))
PREDICT_BLOCKING = (("id_number",), ("phone",), ("pinyin", "birth_date"), ("birth_date", "sex", "district"),
                    ("pinyin", "substr(birth_date, 1, 4)"))  # the last one finds day/month swaps
DETERMINISTIC_RECALL = 0.85


def settings_dict(*, lam: float = 1e-4) -> dict[str, Any]:
    from splink import block_on

    comparisons = []
    for comp in matching.COMPARISONS:
        levels = []
        for lv in comp.levels:
            if lv.sql == "ELSE":
                levels.append({"sql_condition": "ELSE", "label_for_charts": lv.label})
            else:
                levels.append({"sql_condition": lv.sql, "label_for_charts": lv.label,
                               **({"is_null_level": True} if lv.is_null else {})})
        comparisons.append({"output_column_name": comp.name, "comparison_description": comp.description,
                            "comparison_levels": levels})
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": UID,
        "probability_two_random_records_match": lam,
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": [block_on(*cols) for cols in PREDICT_BLOCKING],
        "retain_intermediate_calculation_columns": False,
        "retain_matching_columns": False,
    }


def _db_api():
    import duckdb
    from splink import DuckDBAPI

    con = duckdb.connect()

    def _dist(a: str, b: str) -> int:
        return char_distance(a, b)

    con.create_function(matching.CHAR_DISTANCE_UDF, _dist, ["VARCHAR", "VARCHAR"], "BIGINT")
    return DuckDBAPI(connection=con)


def frame(rows: Iterable[dict[str, Any]]):
    """A pandas frame of feature rows (``Features.as_row`` plus ``unique_id``)."""
    import pandas as pd

    cols = [UID, "name", "pinyin", "pinyin_alts", "birth_date", "sex", "id_number", "phone", "district",
            "street", "address_key"]
    return pd.DataFrame(list(rows), columns=cols)


def _linker(df, settings: dict):
    from splink import Linker

    api = _db_api()
    sdf = api.register(df, source_dataset_name="records") if "source_dataset_name" in \
        api.register.__code__.co_varnames else api.register(df)
    return Linker(sdf, settings, log_level=logging.WARNING)


def train(df, *, max_pairs: float = 2e6, seed: int = 1) -> dict:
    """Estimate the model on the records in ``df``; returns Splink's model JSON (a settings dict)."""
    from splink import block_on

    linker = _linker(df, settings_dict())
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number")], recall=DETERMINISTIC_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for cols in EM_BLOCKING:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols))
    return _loadable(linker.misc.save_model_to_json())


def _loadable(model: dict) -> dict:
    """EM can drive a probability to exactly 0, which Splink then refuses to load; clamp it to Splink's
    smallest accepted value (the weight stays effectively −∞ for both scorers)."""
    for comp in model["comparisons"]:
        for lv in comp["comparison_levels"]:
            for k in ("m_probability", "u_probability"):
                if lv.get(k) == 0:
                    lv[k] = 1e-300
    return model


def score_pairs(model_json: dict, left: list[dict], right: list[dict]):
    """Splink's own scores of every (left × right) pair — the reference the online scorer must match."""
    df = frame(left + right)
    linker = _linker(df, model_json)
    return linker.inference.score_pairs(left, right).as_pandas_dataframe()


def predict(model_json: dict, df, *, threshold_match_weight: float | None = None):
    """Score every pair found by the prediction blocking rules; returns (linker, predictions frame)."""
    linker = _linker(df, model_json)
    pred = linker.inference.predict(threshold_match_weight=threshold_match_weight)
    return linker, pred


def cluster(linker, predictions, threshold_match_probability: float):
    """Connected components over pairs at or above the threshold → a frame of unique_id, cluster_id."""
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold_match_probability)
    return clusters.as_pandas_dataframe()[[UID, "cluster_id"]]
