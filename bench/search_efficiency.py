"""Search efficiency: how many trials TPE and random search need to find the best pipeline.

No model is called and nothing is evaluated: every pipeline of the space below has a *true score*
given by a closed-form model of how the techniques combine, so this measures the sampler alone.
Each run is an in-memory Optuna study driven with ask/tell; each trial's pipeline comes from
``SearchSpace.sample(trial)`` and is scored from the resulting ``PipelineSpec`` (its nodes and
settings, not the raw parameters). The best pipeline is found by enumerating the grid
(``make_sampler("grid", None, space)``); it is checked to be unique.

    python bench/search_efficiency.py [--seeds 20] [--cap 300] [--random-cap 20000] [--jobs 2]
                                      [--n-startup-trials 10] [--no-multivariate] [--group]
                                      [--constant-liar] [--n-ei-candidates 24]
                                      [--out bench/results/search_efficiency.json]

The defaults use TPE exactly as ``make_sampler("tpe", seed)`` builds it (``multivariate=True``,
Optuna's other defaults); the flags try other TPE settings. Random search is ``RandomSampler(seed)``.
Each run stops when it samples the best pipeline. A run that never finds it within its cap counts
as the cap, and the report says how many runs hit it (a median is exact while fewer than half do).
Random search rarely meets one given pipeline within a few hundred trials, so it is reported at
TPE's cap *and* with a longer cap (random trials cost about half a millisecond), next to its exact
median from the geometric distribution (the random sampler draws every grid point with the same
probability, so a pipeline's chance per trial is its share of the grid). Trials are counted as the
sampler asks for them, repeats of an earlier pipeline included (in ``archon search`` a repeat is
answered by the response cache, but it still takes a trial).

The space (8,640 grid points, 5,400 distinct pipelines)::

    draft   generate  model {6 choices}, samples {1,2,4,8,16}, temperature {0.0,0.7,1.0}
    critic  critique  optional (critic: qwen2.5-72b)
    top     rank      optional, top_k {1,4} (ranker: qwen2.5-72b)
    fuse    fuse      repeat {0,1,2} (layers), fuser model {llama-3.1-70b, qwen2.5-72b}
    vote    vote      optional

The true-score model (the constants are the upper-case names below; illustrative numbers for a
MATH-like benchmark, not measurements):

* A model has an accuracy ``a`` (``ACCURACY``); its quality as a ranker, critic or fuser is the same
  number (a model that answers better also judges better), whatever the item.
* Items differ in difficulty: the draft model's per-item accuracy follows
  ``Beta(KAPPA * a, KAPPA * (1 - a))`` (so samples of one item are correlated, and voting gains a few
  points rather than approaching 100%); the score is averaged over ``LEVELS`` quantiles of it.
* On one item, the pool of candidates is tracked exactly as a distribution over ``(n, x, f)``:
  ``n`` distinct answers, ``x`` of them correct, ``f`` whether the first candidate (what a pipeline
  outputs when it ends on a pool) is correct; ``k`` is the number of texts a reader of the pool reads.
* generate(model, samples s, temperature t): per-sample accuracy ``p`` = the item's accuracy scaled
  by ``(a - DROP[t]) / a``; the ``s`` samples give ``n = 1 + round((s - 1) * RHO[t])`` independent
  answers (temperature 0 repeats one answer), ``x ~ Binomial(n, p)``, the first is correct with
  probability ``x / n``; ``k = s``.
* critique (critic quality c): leaves the pool as is; the next rank and the next fuse judge with
  quality ``q + (1 - q) * BETA * c`` instead of ``q``. Costs one call per candidate.
* Reading many texts dilutes a judge: quality ``q * (1 - DILUTION * log2(k))``.
* rank(ranker quality q, top_k K): with probability q the ranking is right (correct answers first),
  otherwise it is a random order. Keeps ``m = min(K, n)`` answers: ``min(x, m)`` correct and a
  correct first one whenever ``x >= 1`` when right; a hypergeometric draw with a random first one
  when not.
* fuse(fuser with accuracy a, quality q): writes one answer. When the pool holds a correct answer
  (``x >= 1``) the fuser picks it with probability ``q``, otherwise it follows a random candidate
  (correct with probability ``x / n``), and a correct answer survives its rewrite with probability
  ``1 - EPS * (1 - a)``; when no candidate is correct it solves the problem itself with probability
  ``GAMMA * a``. Repeated fuse layers read one candidate each (refinement).
* vote: majority of the ``n`` answers (``2x > n``); a tie goes to the first candidate, as Archon's
  ``vote`` breaks ties by input order. Voting over one answer changes nothing.
* score = P(correct) - LAYER_PENALTY * (nodes - 1) - CALL_PENALTY * completions (samples, one per
  critiqued candidate, one per rank or fuse).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import optuna

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search.space import SearchSpace  # noqa: E402
from search.study import make_sampler  # noqa: E402

ACCURACY = {
    "together/llama-3.1-8b": 0.48,
    "together/gemma-2-9b": 0.52,
    "together/qwen2.5-7b": 0.60,
    "together/mixtral-8x22b": 0.64,
    "together/llama-3.1-70b": 0.70,
    "together/qwen2.5-72b": 0.76,
}
KAPPA = 3.0  # item difficulty: a model's per-item accuracy ~ Beta(KAPPA * a, KAPPA * (1 - a))
LEVELS = 40  # difficulty quantiles the score averages over
DROP = {0.0: 0.0, 0.7: 0.01, 1.0: 0.03}  # per-sample accuracy lost to temperature
RHO = {0.0: 0.0, 0.7: 0.7, 1.0: 1.0}  # share of extra samples that are independent answers
BETA = 0.3  # how much of a judge's shortfall a critique recovers (times the critic's quality)
DILUTION = 0.04  # judge quality lost per doubling of the texts it reads
GAMMA = 0.2  # a fuser solves an all-wrong pool itself with probability GAMMA * its accuracy
EPS = 0.1  # a fuser breaks a correct answer with probability EPS * (1 - its accuracy)
LAYER_PENALTY = 0.003
CALL_PENALTY = 0.0002

SPACE = {
    "name": "efficiency",
    "nodes": [
        {"id": "draft", "op": "generate", "model": {"choices": list(ACCURACY)},
         "samples": {"choices": [1, 2, 4, 8, 16]}, "temperature": {"choices": [0.0, 0.7, 1.0]}},
        {"id": "critic", "op": "critique", "optional": True, "inputs": ["draft"], "model": "together/qwen2.5-72b"},
        {"id": "top", "op": "rank", "optional": True, "inputs": ["critic"], "model": "together/qwen2.5-72b",
         "top_k": {"choices": [1, 4]}},
        {"id": "fuse", "op": "fuse", "repeat": {"choices": [0, 1, 2]}, "inputs": ["top"],
         "model": {"choices": ["together/llama-3.1-70b", "together/qwen2.5-72b"]}},
        {"id": "vote", "op": "vote", "optional": True, "inputs": ["fuse"]},
    ],
    "output": "vote",
}


# ---------------------------------------------------------------- the true-score model


def _beta_quantiles(mean: float, kappa: float, levels: int) -> np.ndarray:
    """Midpoint quantiles of Beta(kappa * mean, kappa * (1 - mean)) (numerically, on a fine grid)."""
    a, b = kappa * mean, kappa * (1 - mean)
    grid = (np.arange(200_000) + 0.5) / 200_000
    logpdf = (a - 1) * np.log(grid) + (b - 1) * np.log1p(-grid)
    cdf = np.cumsum(np.exp(logpdf - logpdf.max()))
    cdf /= cdf[-1]
    return np.interp((np.arange(levels) + 0.5) / levels, cdf, grid)


_LEVELS: dict[str, np.ndarray] = {}


def item_accuracy(model: str) -> np.ndarray:
    """The model's per-item accuracy at the LEVELS quantiles of item difficulty."""
    if model not in _LEVELS:
        _LEVELS[model] = _beta_quantiles(ACCURACY[model], KAPPA, LEVELS)
    return _LEVELS[model]


def _binom(n: int, p: np.ndarray) -> list[np.ndarray]:
    return [math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(n + 1)]


def _hyper(total: int, good: int, draws: int) -> list[float]:
    denom = math.comb(total, draws)
    return [math.comb(good, y) * math.comb(total - good, draws - y) / denom for y in range(draws + 1)]


def _add(dist: dict, key: tuple, prob) -> None:
    dist[key] = dist.get(key, 0.0) + prob


def true_score(spec) -> float:
    """The closed-form score of a pipeline of this space (see the module docstring)."""
    dist: dict[tuple[int, int, int], np.ndarray] = {}  # (n, x, f) -> probability at each difficulty level
    k, bonus, calls = 0, 0.0, 0
    for node in spec.nodes:
        cfg = node.config
        if node.op == "generate":
            s, t = cfg.samples, cfg.temperature
            a = ACCURACY[cfg.model]
            p = item_accuracy(cfg.model) * (a - DROP[t]) / a
            n = 1 + int((s - 1) * RHO[t] + 0.5)
            for x, px in enumerate(_binom(n, p)):
                _add(dist, (n, x, 1), px * x / n)
                _add(dist, (n, x, 0), px * (1 - x / n))
            k, calls = s, calls + s
        elif node.op == "critique":
            bonus = BETA * ACCURACY[cfg.model]
            calls += k
        elif node.op == "rank":
            q0 = ACCURACY[cfg.model]
            q = (q0 + (1 - q0) * bonus) * (1 - DILUTION * math.log2(k))
            new: dict = {}
            for (n, x, _f), pr in dist.items():
                m = min(cfg.top_k, n)
                _add(new, (m, min(x, m), int(x >= 1)), pr * q)
                for y, py in enumerate(_hyper(n, x, m)):
                    if py:
                        _add(new, (m, y, 1), pr * (1 - q) * py * y / m)
                        _add(new, (m, y, 0), pr * (1 - q) * py * (1 - y / m))
            dist, k, calls = new, min(cfg.top_k, k), calls + 1
        elif node.op == "fuse":
            a = ACCURACY[cfg.model]
            q = (a + (1 - a) * bonus) * (1 - DILUTION * math.log2(k))
            right = 0.0
            for (n, x, _f), pr in dist.items():
                right = right + pr * ((q + (1 - q) * x / n) * (1 - EPS * (1 - a)) if x else GAMMA * a)
            dist = {(1, 1, 1): right, (1, 0, 0): 1 - right}
            k, bonus, calls = 1, 0.0, calls + 1
        elif node.op == "vote":
            right = sum(pr for (n, x, f), pr in dist.items() if 2 * x > n or (2 * x == n and f))
            dist = {(1, 1, 1): right, (1, 0, 0): 1 - right}
            k = 1
        else:
            raise ValueError(f"no score model for op '{node.op}'")
    correct = float(np.mean(sum(pr for (n, x, f), pr in dist.items() if f)))
    return correct - LAYER_PENALTY * (len(spec.nodes) - 1) - CALL_PENALTY * calls


def spec_key(spec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)


class _Fixed:
    """A stand-in trial that answers every choice from a dict of parameter values."""

    def __init__(self, values: dict):
        self.values = values

    def suggest_categorical(self, name, choices):
        return self.values[name]


def enumerate_space(space: SearchSpace) -> dict:
    """Every grid point's pipeline and score: the best (checked unique), and the landscape."""
    grid = make_sampler("grid", None, space)._search_space  # the grid the grid sampler walks
    names = list(grid)
    scores: dict[str, float] = {}
    hits: dict[str, int] = {}
    text: dict[str, str] = {}
    for combo in itertools.product(*(grid[n] for n in names)):
        spec = space.sample(_Fixed(dict(zip(names, combo))))
        key = spec_key(spec)
        if key not in scores:
            scores[key] = true_score(spec)
            text[key] = spec.to_yaml()
        hits[key] = hits.get(key, 0) + 1
    ranked = sorted(scores, key=scores.get, reverse=True)
    best, second = ranked[0], ranked[1]
    if scores[best] - scores[second] < 1e-12:
        raise SystemExit(f"the best pipeline is not unique: {scores[best]} twice")
    grid_points = math.prod(len(v) for v in grid.values())
    return {
        "grid": {n: grid[n] for n in names}, "grid_points": grid_points, "pipelines": len(scores),
        "best_key": best, "best_score": scores[best], "best_yaml": text[best], "second_score": scores[second],
        "best_grid_points": hits[best],
        "within_99": sum(1 for s in scores.values() if s >= 0.99 * scores[best]),
        "within_99_grid_points": sum(hits[k] for k, s in scores.items() if s >= 0.99 * scores[best]),
        "top5": [{"score": round(scores[k], 5), "pipeline": _short(text[k])} for k in ranked[:5]],
        "worst_score": scores[ranked[-1]],
    }


def _short(yaml_text: str) -> str:
    import yaml

    d = yaml.safe_load(yaml_text)
    parts = []
    for n in d["nodes"]:
        extra = {k: v for k, v in n.items() if k not in ("id", "op", "inputs")}
        if "model" in extra:
            extra["model"] = str(extra["model"]).split("/")[-1]
        parts.append(n["op"] + ("(" + ", ".join(f"{k}={v}" for k, v in extra.items()) + ")" if extra else ""))
    return " -> ".join(parts)


# ---------------------------------------------------------------- the runs


def build_sampler(kind: str, seed: int, tpe: dict):
    if kind == "random":
        return optuna.samplers.RandomSampler(seed)
    if tpe.get("default"):
        return make_sampler("tpe", seed)
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=tpe["multivariate"], group=tpe["group"], constant_liar=tpe["constant_liar"],
        n_startup_trials=tpe["n_startup_trials"], n_ei_candidates=tpe["n_ei_candidates"],
    )


def one_run(kind: str, seed: int, cap: int, best_key: str, target99: float, tpe: dict) -> dict:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    space = SearchSpace(SPACE)
    study = optuna.create_study(direction="maximize", sampler=build_sampler(kind, seed, tpe))
    cache: dict[str, float] = {}
    found = reach99 = None
    best_seen = -1.0
    started = time.perf_counter()
    for i in range(1, cap + 1):
        trial = study.ask()
        spec = space.sample(trial)
        key = spec_key(spec)
        if key not in cache:
            cache[key] = true_score(spec)
        score = cache[key]
        study.tell(trial, score)
        best_seen = max(best_seen, score)
        if reach99 is None and score >= target99:
            reach99 = i
        if key == best_key:
            found = i
            break
    return {"sampler": kind, "seed": seed, "found": found, "reach99": reach99, "trials_run": i,
            "distinct_pipelines_tried": len(cache), "best_seen": best_seen, "wall_s": time.perf_counter() - started}


def summarize(runs: list[dict], cap: int) -> dict:
    """Medians over runs; a run that did not get there within ``cap`` trials counts as ``cap``."""
    def capped(key):
        return [r[key] if r[key] is not None and r[key] <= cap else cap for r in runs]

    def missed(key):
        return sum(r[key] is None or r[key] > cap for r in runs)

    found, r99 = capped("found"), capped("reach99")
    return {
        "runs": len(runs), "cap": cap,
        "median_trials_to_best": statistics.median(found), "hit_cap_best": missed("found"),
        "median_trials_to_99pct": statistics.median(r99), "hit_cap_99pct": missed("reach99"),
        "trials_to_best": found, "trials_to_99pct": r99,
    }


def geometric_median(p: float) -> int:
    """Median trial number of the first success when each trial succeeds with probability p."""
    return 1 if p >= 1 else math.ceil(math.log(0.5) / math.log1p(-p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="Runs per sampler (seeds 0..N-1).")
    ap.add_argument("--cap", type=int, default=300, help="Most trials per TPE run (random is also reported at this cap).")
    ap.add_argument("--random-cap", type=int, default=20000, help="Most trials per random run (cheap: about 0.5 ms a trial).")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="Worker processes.")
    ap.add_argument("--n-startup-trials", type=int, default=10, help="TPE random trials before modelling (Optuna's default: 10).")
    ap.add_argument("--no-multivariate", action="store_true", help="Independent TPE (make_sampler uses multivariate).")
    ap.add_argument("--group", action="store_true", help="TPE group=True (split by which parameters a trial used).")
    ap.add_argument("--constant-liar", action="store_true", help="TPE constant_liar=True (only matters for parallel trials).")
    ap.add_argument("--n-ei-candidates", type=int, default=24, help="TPE candidates scored per suggestion (Optuna's default: 24).")
    ap.add_argument("--out", default="bench/results/search_efficiency.json")
    args = ap.parse_args()
    random_cap = max(args.random_cap, args.cap)
    tpe = {"multivariate": not args.no_multivariate, "group": args.group, "constant_liar": args.constant_liar,
           "n_startup_trials": args.n_startup_trials, "n_ei_candidates": args.n_ei_candidates}
    tpe["default"] = tpe == {"multivariate": True, "group": False, "constant_liar": False, "n_startup_trials": 10,
                             "n_ei_candidates": 24}
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    started = time.perf_counter()

    space = SearchSpace(SPACE)
    land = enumerate_space(space)
    enum_s = time.perf_counter() - started
    target99 = 0.99 * land["best_score"]
    p_best = land["best_grid_points"] / land["grid_points"]
    p_99 = land["within_99_grid_points"] / land["grid_points"]
    print(f"space: {len(land['grid'])} parameters, {land['grid_points']} grid points, {land['pipelines']} distinct pipelines "
          f"(enumerated in {enum_s:.1f}s)")
    print(f"best:  {land['best_score']:.4f}  {_short(land['best_yaml'])}")
    print(f"       runner-up {land['second_score']:.4f}; {land['within_99']} pipelines within 99% of the best "
          f"(>= {target99:.4f}); worst {land['worst_score']:.4f}")

    jobs = [("tpe", s, args.cap) for s in range(args.seeds)] + [("random", s, random_cap) for s in range(args.seeds)]
    runs: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(one_run, kind, seed, cap, land["best_key"], target99, tpe) for kind, seed, cap in jobs]
        runs = [f.result() for f in futures]
    wall = time.perf_counter() - started
    tpe_runs = [r for r in runs if r["sampler"] == "tpe"]
    rnd_runs = [r for r in runs if r["sampler"] == "random"]

    res = {
        "tpe": summarize(tpe_runs, args.cap),
        "random_same_cap": summarize(rnd_runs, args.cap),
        "random": summarize(rnd_runs, random_cap),
        "random_exact": {"p_best_per_trial": p_best, "median_trials_to_best": geometric_median(p_best),
                         "p_99pct_per_trial": p_99, "median_trials_to_99pct": geometric_median(p_99)},
    }
    t, r, rx = res["tpe"], res["random"], res["random_exact"]
    res["ratio_tpe_over_random"] = {
        "best": t["median_trials_to_best"] / r["median_trials_to_best"],
        "best_vs_exact": t["median_trials_to_best"] / rx["median_trials_to_best"],
        "99pct": t["median_trials_to_99pct"] / r["median_trials_to_99pct"],
        "99pct_vs_exact": t["median_trials_to_99pct"] / rx["median_trials_to_99pct"],
    }
    # Medians are exact while fewer than half the runs hit their cap.
    res["medians_exact"] = {"tpe": t["hit_cap_best"] * 2 < t["runs"], "random": r["hit_cap_best"] * 2 < r["runs"]}
    res["target_met"] = res["medians_exact"]["tpe"] and res["ratio_tpe_over_random"]["best_vs_exact"] <= 0.5 and (
        not res["medians_exact"]["random"] or res["ratio_tpe_over_random"]["best"] <= 0.5)
    res["wall_s_per_run"] = {"tpe": statistics.mean(x["wall_s"] for x in tpe_runs),
                             "random": statistics.mean(x["wall_s"] for x in rnd_runs)}
    res["tpe_distinct_share"] = statistics.mean(x["distinct_pipelines_tried"] / x["trials_run"] for x in tpe_runs)

    print(f"\n{args.seeds} seeds each; medians of trials (hit cap = runs that never got there, counted as the cap)")
    print(f"{'':34}{'to the best':>12}{'hit cap':>9}{'to 99% of best':>16}{'hit cap':>9}")
    rows = [(f"TPE (cap {args.cap})", t), (f"random (cap {args.cap})", res["random_same_cap"]), (f"random (cap {random_cap})", r)]
    for name, s in rows:
        print(f"{name:34}{s['median_trials_to_best']:>12g}{s['hit_cap_best']:>6}/{s['runs']:<3}"
              f"{s['median_trials_to_99pct']:>15g}{s['hit_cap_99pct']:>6}/{s['runs']:<3}")
    print(f"{'random, exact (geometric)':34}{rx['median_trials_to_best']:>12}{'':9}{rx['median_trials_to_99pct']:>15}")
    q = res["ratio_tpe_over_random"]
    print(f"\nTPE / random: to the best {q['best']:.3f} (vs exact {q['best_vs_exact']:.3f}); "
          f"to 99% {q['99pct']:.3f} (vs exact {q['99pct_vs_exact']:.3f})")
    print(f"target (TPE needs at most half as many trials to the best): {'met' if res['target_met'] else 'NOT met'}")
    how = 'make_sampler("tpe", seed), i.e. ' if tpe["default"] else ""
    print(f"TPE settings: {how}"
          + ", ".join(f"{k}={v}" for k, v in tpe.items() if k != "default")
          + f"; {res['tpe_distinct_share']:.0%} of TPE's trials were pipelines new to the run")
    print(f"wall time: {wall:.1f}s ({args.jobs} workers; enumeration {enum_s:.1f}s; "
          f"{res['wall_s_per_run']['tpe']:.2f}s per TPE run, {res['wall_s_per_run']['random']:.2f}s per random run)")

    out = {
        "benchmark": "search_efficiency", "seeds": args.seeds, "cap": args.cap, "random_cap": random_cap,
        "tpe_settings": tpe, "optuna": optuna.__version__,
        "space": {k: v for k, v in land.items() if k != "best_key"},
        "model": {"accuracy": ACCURACY, "kappa": KAPPA, "levels": LEVELS, "drop": DROP, "rho": RHO, "beta": BETA,
                  "dilution": DILUTION, "gamma": GAMMA, "eps": EPS, "layer_penalty": LAYER_PENALTY,
                  "call_penalty": CALL_PENALTY},
        "results": res, "runs": runs, "wall_s": wall,
    }
    out["space"]["grid"] = {k: [str(x) for x in v] for k, v in land["grid"].items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
