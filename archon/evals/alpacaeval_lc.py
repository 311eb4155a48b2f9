"""AlpacaEval's length-controlled win rate (Dubois et al. 2024), re-implemented from alpaca-eval 0.6.6's
``alpaca_eval/metrics/glm_winrate.py`` (``get_length_controlled_winrate`` with ``length_controlled_v1``).

Why not call the package: its GLM downloads ``df_gamed.csv`` from the Hugging Face hub on every call
(``hf_hub_download``), so it cannot run offline, and installing it brings ``datasets``, pandas,
patsy and tiktoken for one logistic regression. This module needs numpy and scikit-learn
(``pip install 'archon-llm[alpacaeval]'``); a test compares it with the package's own function
on synthetic annotations when the package is installed.

The model, as the package fits it:

- features ``tanh(std_delta_len)``, ``instruction_difficulty``, ``not_gamed_baseline`` (no intercept),
  where ``std_delta_len`` is (reference length - output length) in characters over its standard
  deviation across the items, and ``instruction_difficulty`` is read from ``df_gamed.csv`` by the
  item's position in the data file;
- trained on the items' preferences (in [0, 1], as probabilities: each row twice, label 1 weighted
  by p and label 0 by 1 - p) together with the gamed baselines' rows of ``df_gamed.csv`` weighted
  0.1 (``regularize_to_baseline_lambda`` 0.2, over two gamed baselines);
- ``LogisticRegressionCV``: L1, liblinear, ``random_state=123``, five ``GroupKFold`` folds keeping a
  row's two copies together, chosen by the weighted continuous log loss;
- the length-controlled win rate is the mean predicted preference with no length difference
  (``std_delta_len = 0``), and its standard error that of those predictions, both in percent.

``df_gamed.csv`` is AlpacaEval's data (the tatsu-lab/alpaca_eval dataset), not shipped: without it
beside the data file the figure is None and the report says which file to add.
"""

from __future__ import annotations

__all__ = ["GAMED_WEIGHT", "GamedData", "from_rows", "length_controlled_win_rate", "read_gamed"]

import csv
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archon.exceptions import ConfigError, SpecError, UserError

REGULARIZE_TO_BASELINE_LAMBDA = 0.2
GAMED_WEIGHT = REGULARIZE_TO_BASELINE_LAMBDA / 2  # "divided by 2 because there are two gamed baselines"
_INSTALL = "pip install 'archon-llm[alpacaeval]' (numpy and scikit-learn)"


@dataclass(frozen=True)
class GamedData:
    """``df_gamed.csv``: the regularising rows and each instruction's difficulty (by position)."""

    difficulty: dict[int, float]
    rows: list[tuple[float, float, float, float]]  # (std_delta_len, difficulty, not_gamed_baseline, preference)


def _bool(value: str) -> float:
    return 1.0 if value.strip().lower() in ("true", "1", "1.0") else 0.0


def _float(value: str) -> float:
    return float(value) if value.strip() else math.nan


def read_gamed(path: Path) -> GamedData:
    """The columns the GLM uses from ``df_gamed.csv``. An instruction's difficulty is its first row's,
    as ``drop_duplicates("index")`` keeps it."""
    need = ("index", "instruction_difficulty", "not_gamed_baseline", "std_delta_len", "preference")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in need if c not in (reader.fieldnames or [])]
            if missing:
                raise SpecError(f"{path}: no column {', '.join(missing)}; expected AlpacaEval's df_gamed.csv ({', '.join(need)}).")
            difficulty: dict[int, float] = {}
            rows = []
            for n, rec in enumerate(reader, 2):
                try:
                    index, diff = int(float(rec["index"])), float(rec["instruction_difficulty"])
                    rows.append((float(rec["std_delta_len"]), diff, _bool(rec["not_gamed_baseline"]), _float(rec["preference"])))
                except (TypeError, ValueError) as exc:
                    raise SpecError(f"{path}:{n}: not a number where one is expected ({exc}).") from None
                difficulty.setdefault(index, diff)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}).") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    return GamedData(difficulty, rows)


def _logloss_continuous(y_true: Any, y_pred: Any, true_prob: Any, true_sample_weight: Any = None) -> float:
    """glm_winrate's ``logloss_continuous``: the log loss against the probabilities the labels stand for."""
    import numpy as np

    y = np.where(y_true == 1, true_prob, 1 - true_prob)
    p = np.clip(y_pred, 1e-15, 1 - 1e-15)
    losses = y * np.log(p) + (1 - y) * np.log(1 - p)
    if true_sample_weight is not None:
        losses = losses * true_sample_weight
    return float(-np.mean(losses))


def _fit(x: Any, prob: Any, weight: Any) -> Any:
    """``fit_LogisticRegressionCV(is_ytrue_proba=True, n_splits=5)``: every row twice (label 1
    weighted by p, label 0 by 1 - p) and cross-validated by the weighted continuous log loss."""
    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    n = len(prob)
    x2 = np.vstack([x, x])
    y2 = np.concatenate([np.ones(n), np.zeros(n)])
    true_prob = np.concatenate([prob, 1 - prob])
    true_weight = np.concatenate([weight, weight])
    groups = np.concatenate([np.arange(n), np.arange(n)])
    # scikit-learn 1.8 spells penalty="l1" as l1_ratios=(1,) (the old spelling goes in 1.10); same model.
    params = inspect.signature(LogisticRegressionCV).parameters
    l1: dict[str, Any] = {"l1_ratios": (1.0,), "use_legacy_attributes": True} if "use_legacy_attributes" in params else {"penalty": "l1"}
    # The package turns metadata routing on globally; here it is on for this fit only.
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(_logloss_continuous, response_method="predict_proba", greater_is_better=False)
        scorer = scorer.set_score_request(true_sample_weight=True, true_prob=True)
        model = LogisticRegressionCV(cv=GroupKFold(n_splits=5), scoring=scorer, random_state=123, dual=False, solver="liblinear",
                                     n_jobs=None, fit_intercept=False, **l1)
        model.set_fit_request(sample_weight=True)
        model.fit(x2, y2, sample_weight=true_prob * true_weight, groups=groups, true_sample_weight=true_weight, true_prob=true_prob)
    return model


def length_controlled_win_rate(preferences: list[float | None], len_1: list[int], len_2: list[int], indices: list[int],
                               gamed: GamedData) -> dict[str, Any]:
    """The length-controlled win rate and its standard error (percent) of one pipeline's items:
    preferences on AlpacaEval's 1-2 scale (None: no verdict, left out of the fit but predicted),
    the reference's (``len_1``) and the output's (``len_2``) lengths, and each item's position."""
    try:
        import numpy as np
    except ImportError as exc:
        raise ConfigError(f"the length-controlled win rate needs numpy and scikit-learn: {_INSTALL}") from exc
    missing = sorted(set(indices) - set(gamed.difficulty))
    if missing:
        raise SpecError(f"df_gamed.csv has no instruction_difficulty for item position {missing[0]}; it must come with the data file.")
    pref = np.array([math.nan if p is None else (1.5 if p == 0 else p) for p in preferences], dtype=float) - 1
    delta = np.array(len_1, dtype=float) - np.array(len_2, dtype=float)
    spread = delta.std(ddof=1) if len(delta) > 1 else math.nan
    std_delta = delta / spread
    diff = np.array([gamed.difficulty[i] for i in indices], dtype=float)
    ours = np.column_stack([np.tanh(std_delta), diff, np.ones(len(pref))])
    g = np.array(gamed.rows, dtype=float).reshape(-1, 4)
    theirs = np.column_stack([np.tanh(g[:, 0]), g[:, 1], g[:, 2]])
    x = np.vstack([theirs, ours])
    y = np.concatenate([g[:, 3], pref])
    weight = np.concatenate([g[:, 2] + GAMED_WEIGHT * (1 - g[:, 2]), np.ones(len(pref))])
    keep = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
    model = _fit(x[keep], y[keep], weight[keep])
    test = np.column_stack([np.zeros(len(pref)), diff, np.ones(len(pref))])
    predicted = model.predict_proba(test)[:, 1]
    sem = float(predicted.std(ddof=1) / math.sqrt(len(predicted))) if len(predicted) > 1 else math.nan
    coef = [float(c) for c in model.coef_[0]]
    return {"length_controlled_winrate": float(predicted.mean()) * 100, "lc_standard_error": None if math.isnan(sem) else sem * 100,
            "glm_weights": dict(zip(("np.tanh(std_delta_len)", "instruction_difficulty", "not_gamed_baseline.astype(float)"), coef))}


def from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The length-controlled figures for the scorer's raw rows, or None with the reason."""
    files = {row.get("glm_file") for row in rows}
    if not rows:
        return {"length_controlled_winrate": None, "lc_standard_error": None}
    if None in files or len(files) != 1:
        return {"length_controlled_winrate": None, "lc_standard_error": None,
                "lc_note": "put AlpacaEval's df_gamed.csv (tatsu-lab/alpaca_eval on Hugging Face) beside the data file: "
                           "the length-controlled GLM reads instruction difficulty and its regularising rows from it"}
    if len(rows) < 2:  # the length difference is standardised by its spread over the items
        return {"length_controlled_winrate": None, "lc_standard_error": None, "lc_note": "needs two judged items or more"}
    try:
        gamed = read_gamed(Path(str(files.pop())))
        return length_controlled_win_rate([r.get("preference") for r in rows], [int(r["len_1"]) for r in rows],
                                          [int(r["len_2"]) for r in rows], [int(r["index"]) for r in rows], gamed)
    except ImportError:
        return {"length_controlled_winrate": None, "lc_standard_error": None, "lc_note": f"needs scikit-learn: {_INSTALL}"}
    except UserError as exc:  # a bad df_gamed.csv: the win rate still stands, and the note says what to fix
        return {"length_controlled_winrate": None, "lc_standard_error": None, "lc_note": str(exc)}
