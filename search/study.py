"""``archon search``: an Optuna study over a search space, each trial scored by ``archon eval`` on a
growing subset of the dev items (poor trials pruned early), all trials sharing the response cache.

The study lives in the same database as the store, so running the same command again resumes it,
and several workers pointed at one PostgreSQL database share it: each worker heartbeats its running
trial, counts the others' running trials toward ``--trials``, and a killed worker's trial is failed
once its heartbeat goes stale. Budgets: ``runtime.budget`` refuses any request that could cross the
search's total limit; per-query limits reject pipelines that make too many calls (known before
running) or spend too many tokens or dollars per query (measured on the first subset).
"""

from __future__ import annotations

__all__ = ["PerQuery", "SearchResult", "TrialProgress", "make_sampler", "quiet_optuna", "run_search", "subset_sizes"]

import asyncio
import copy
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from archon.exceptions import UserError
from search.final import finish_search, measure, study_summary
from search.samplers import make_sampler

if TYPE_CHECKING:
    from archon.context import Runtime
    from archon.evals.datasets import Benchmark
    from archon.spec import PipelineSpec
    from backends.budget import Budget
    from search.space import FunctionSpace, SearchSpace

COST_KEYS = {"usd": "cost_per_query_usd", "tokens": "tokens_per_query", "calls": "calls_per_item"}
HEARTBEAT_S = 2.0  # a running trial's heartbeat period ...
GRACE_S = 8.0  # ... and how long without one before another worker fails it as stale
MAX_SKIPPED_IN_A_ROW = 200  # samples skipped (already tried, or over the per-query call limit) before giving up


@dataclass(frozen=True)
class PerQuery:
    """Limits every candidate must respect, per query: calls (static bound), tokens and dollars (measured means)."""

    calls: int | None = None
    tokens: float | None = None
    usd: float | None = None


def subset_sizes(total: int, steps: int = 3, first: int = 5) -> list[int]:
    """Growing dev subsets, e.g. 50 items -> [16, 33, 50]: cheap looks first, the whole set last."""
    sizes = sorted({max(min(first, total), total * (k + 1) // steps) for k in range(steps)})
    return [s for s in sizes if s > 0] or [total]


@dataclass(frozen=True)
class TrialProgress:
    """What a search's ``progress`` callback gets after each trial it ran."""

    trial: int
    state: str  # complete, pruned, fail
    score: float | None = None
    n: int = 0  # items scored
    calls_per_item: float | None = None
    calls: int = 0
    cached_calls: int = 0


@dataclass
class SearchResult:
    """A search, or a finished study shown again: ``to_dict()`` is ``archon search --json``, ``str()`` its text report."""

    study_name: str
    trials: list[dict[str, Any]] = field(default_factory=list)  # the leaderboard, best first
    best: dict[str, Any] | None = None
    pareto: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    holdout: dict[str, Any] | None = None
    stopped: str | None = None  # why this command stopped early (a budget), even when earlier runs ended otherwise
    calls_requested: int = 0
    calls_issued: int = 0
    spent_usd: float = 0.0
    saved_usd: float = 0.0
    cost_key: str = "cost_per_query_usd"  # the cost measure of the Pareto front and the plot
    scoring_visible: list[str] = field(default_factory=list)  # scoring fields the pipelines saw: scores are optimistic
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0  # samples that repeated a tried pipeline or broke the per-query call limit
    ran: int = 0  # trials this process ran
    wall_s: float = 0.0
    dev_items: int | None = None  # the dev items the best trials were rescored on
    power_ranking: list[dict[str, Any]] = field(default_factory=list)  # Archon spaces: each model alone, best first

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study_name, "leaderboard": self.trials, **{k: v for k, v in asdict(self).items() if k not in ("study_name", "trials")}}

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> SearchResult:
        """A study's summary (``search.final.study_summary``) as a result; keys it does not know are left out."""
        known = {f.name for f in fields(cls)}
        result = cls(summary["study"], trials=list(summary.get("leaderboard") or []))
        for key, value in summary.items():
            if key in known and key not in ("study_name", "trials"):
                setattr(result, key, value)
        return result

    @property
    def best_spec(self) -> PipelineSpec | None:
        """The best pipeline, ready to run (``archon.run(result.best_spec, query)``), or None before any finished trial."""
        import yaml

        from archon.spec import parse_pipeline

        if self.best is None:
            return None
        return parse_pipeline(yaml.safe_load(self.best["pipeline"]), source=f"trial {self.best['trial']}", check_backends=False)

    def __str__(self) -> str:
        from search.report import render_text

        return render_text(self.to_dict())


def _study(name: str, storage: str, sampler: str, seed: int | None, space: SearchSpace | FunctionSpace, multi: bool, trials: int):
    import optuna

    store = _rdb_storage(storage)
    directions: list[Literal["maximize", "minimize"]] = ["maximize", "minimize"] if multi else ["maximize"]
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    # An existing study loads with the directions it was made with: compared below.
    study = optuna.create_study(study_name=name, storage=store, load_if_exists=True, directions=directions,
                                sampler=make_sampler(sampler, seed, space, trials), pruner=pruner)
    if [d.name.lower() for d in study.directions] != directions:
        raise UserError(f"study '{name}' was created {'without' if multi else 'with'} the nsga2 score-and-cost objective; "
                        "give another --study name or the sampler it was made with.")
    return study, store


def _rdb_storage(url: str):
    import optuna
    import sqlalchemy.exc
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random

    # Workers started together on a fresh PostgreSQL database race to create Optuna's tables and
    # types; the loser's CREATE fails. Trying again finds them made.
    @retry(retry=retry_if_exception_type((sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError)),
           stop=stop_after_attempt(5), wait=wait_random(0.1, 1.0), reraise=True)
    def make():
        return optuna.storages.RDBStorage(url, heartbeat_interval=int(HEARTBEAT_S) or 1, grace_period=int(GRACE_S))

    return make()


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's info lines and the warnings this way of driving it raises, silenced for the calls inside only.

    Heartbeats are recorded here (ask/tell, not study.optimize), which Optuna warns about; so is their API
    (and the multivariate TPE) being experimental. Only synchronous calls go inside: filters set across an
    ``await`` would leak into whatever else runs in the event loop meanwhile.
    """
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _own_budget(runtime: Runtime, budget: Budget) -> Runtime:
    """The caller's runtime (its backends, store, call log and cache) metered by the search's own ``budget``.

    A shallow copy with no wrapper chains yet: chains hold the budget they were built with, so the copy
    builds its own around the same backends. Backends it builds join the caller's list, which the
    caller's ``aclose`` closes. The caller's runtime and budget stay as they were.
    """
    budget.pricing = budget.pricing or runtime.budget.pricing  # the runtime's price table
    view = copy.copy(runtime)
    view.budget = budget
    view._chains = {}
    return view


async def _heartbeat(store: Any, trial_id: int) -> None:
    while True:
        await asyncio.to_thread(store.record_heartbeat, trial_id)
        await asyncio.sleep(HEARTBEAT_S)


def _counts(t: Any) -> bool:
    """Trials toward ``--trials``: evaluated ones. A sample that repeats a tried pipeline, or that the per-query
    call limit rules out, costs nothing and does not count: ``--trials 8`` means 8 pipelines tried."""
    from optuna.trial import TrialState

    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not t.user_attrs.get("skipped")


async def run_search(
    space: SearchSpace | FunctionSpace,
    benchmark: Benchmark,
    runtime: Runtime,
    *,
    storage: str,
    trials: int,
    study_name: str | None = None,
    sampler: str = "tpe",
    seed: int | None = None,
    steps: int = 3,
    concurrency: int = 8,
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    max_calls: int | None = None,
    per_query: PerQuery = PerQuery(),
    trial_items: int | None = None,
    rescore: int = 3,
    holdout: int = 0,
    baseline: PipelineSpec | None = None,
    cost: str = "auto",
    power_rank: float | None = None,
    progress: Callable[[TrialProgress], None] | None = None,
) -> SearchResult:
    """Run trials until the study holds ``trials`` evaluated ones (earlier runs and other workers count),
    or a budget stops it; then score the best few on the whole dev set, the baseline, and the held-out split.

    ``runtime`` supplies the backends, store and cache; the budget limits apply to this search alone.
    An Archon space is first power-ranked on ``power_rank`` dev items (``search.power_rank.study_ranking``:
    kept in the study, reused on resuming), within the same budget."""
    import optuna
    from optuna.trial import TrialState

    from backends.budget import Budget

    if cost == "auto":  # dollars where the models have prices; tokens for local and unpriced models
        cost = "usd" if any(_priced(ref, runtime) for ref in space.sample_first().model_refs()) else "tokens"
    if cost not in COST_KEYS:
        raise UserError(f"unknown cost measure '{cost}'. Valid: auto, {', '.join(COST_KEYS)}")
    if holdout and holdout >= len(benchmark.items):
        raise UserError(f"--holdout {holdout} leaves no dev items: the benchmark has {len(benchmark.items)}.")
    dev = benchmark.head(len(benchmark.items) - holdout)
    held = benchmark.tail(holdout) if holdout else None
    name = study_name or f"{space.name}@{benchmark.name}"
    multi = sampler == "nsga2"
    with quiet_optuna():
        study, store = _study(name, storage, sampler, seed, space, multi, trials)
    study.set_user_attr("cost_key", COST_KEYS[cost])
    # Kept in the study, so that --show warns as the search did.
    study.set_user_attr("scoring_visible", list(benchmark.scoring_visible))
    budget = Budget(budget_usd, budget_tokens, max_calls)
    runtime = _own_budget(runtime, budget)
    # What earlier runs spent outside trials (ranking, final rescoring) counts toward the budget;
    # what this process spends is in budget.spent.
    earlier = _spent_outside_trials(study)
    budget.base = _spent(study.get_trials(deepcopy=False)) + earlier
    if not budget.over():  # spent already: the loop below stops, and a kept ranking is not overwritten by a refused one
        await _power_rank(space, dev, runtime, study, power_rank, concurrency)
    n_trial = min(trial_items or len(dev.items), len(dev.items))
    # Optuna cannot prune a multi-objective study: NSGA-II scores every trial on all its items at once.
    sizes = [n_trial] if multi else subset_sizes(n_trial, steps)
    result = SearchResult(name)
    mine: set[int] = set()
    skipped_in_a_row = 0
    started = time.perf_counter()
    while True:
        with quiet_optuna():
            optuna.storages.fail_stale_trials(study)
        everything = study.get_trials(deepcopy=False)
        budget.base = _spent(t for t in everything if t.number not in mine) + earlier
        counted = sum(_counts(t) for t in everything)
        running = sum(t.state == TrialState.RUNNING for t in everything)
        if counted >= trials:
            break
        if budget.exhausted or budget.over():
            result.stopped = f"{budget.exhausted or budget.over()}; every finished trial is kept"
            break
        if skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
            tried = len({t.user_attrs.get("pipeline") for t in everything if _counts(t)})
            result.stopped = (f"the last {skipped_in_a_row} samples were all pipelines already tried or over the per-query call "
                              f"limit: the space seems exhausted after {tried} distinct pipelines")
            break
        if counted + running >= trials:
            await asyncio.sleep(HEARTBEAT_S)  # other workers are finishing the last trials
            continue
        with quiet_optuna():
            trial = study.ask()
        mine.add(trial.number)
        if _surplus(study, trial.number, trials):
            # Another worker asked in the same instant: the earliest trial numbers win, this one steps back.
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            continue
        try:
            with quiet_optuna():
                spec = space.sample(trial)
            measured: dict[str, Any] = {}
            if _repeat(trial, spec, everything, study):
                state = "skipped"
            else:
                state, measured = await _run_trial(trial, spec, store, study, dev, sizes, runtime, concurrency, per_query, cost, multi)
        except BaseException:
            # A bad sample, a user error or Ctrl-C: fail the trial now, so the next run need not wait
            # for its heartbeat to go stale before replacing it.
            _fail_quietly(study, trial)
            raise
        skipped_in_a_row = skipped_in_a_row + 1 if state == "skipped" else 0
        result.ran += state != "skipped"
        if progress is not None and state != "skipped":
            progress(TrialProgress(trial.number, state, measured.get("score"), measured.get("n", 0), measured.get("calls_per_item"),
                                   measured.get("calls", 0), measured.get("cached_calls", 0)))
    if result.stopped is None:
        await finish_search(study, dev, held, runtime, rescore=rescore, baseline=baseline,
                            concurrency=concurrency, cost_key=COST_KEYS[cost])
    study.set_user_attr("last_stop", result.stopped)
    summary = study_summary(study, COST_KEYS[cost])
    final = SearchResult.from_summary({**summary, "stopped": result.stopped})
    final.ran, final.wall_s = result.ran, round(time.perf_counter() - started, 2)
    return final


def _fail_quietly(study: Any, trial: Any) -> None:
    from optuna.trial import TrialState

    try:
        study.tell(trial, state=TrialState.FAIL)
    except Exception:  # already told (it finished before the error), or the storage is gone
        pass


def _priced(ref: str, runtime: Runtime) -> bool:
    from archon.graph import parse_model_ref

    backend, model = parse_model_ref(ref)
    return bool(runtime.pricing.cost(backend, model, 1000, 1000))


def _repeat(trial: Any, spec: PipelineSpec, everything: list[Any], study: Any) -> bool:
    """A sample that repeats an evaluated pipeline gets that trial's result at no cost, so the sampler
    learns from it, and is skipped."""
    from optuna.trial import TrialState

    text = spec.to_yaml()
    twin = next((t for t in everything if _counts(t) and t.user_attrs.get("pipeline") == text), None)
    if twin is None:
        return False
    trial.set_user_attr("skipped", f"the pipeline of trial {twin.number}")
    for key, value in twin.constraints.items():
        trial.set_constraint(key, value)
    if twin.state == TrialState.COMPLETE:
        study.tell(trial, twin.values)
    else:
        study.tell(trial, state=TrialState.PRUNED)
    return True


def _surplus(study: Any, number: int, trials: int) -> bool:
    from optuna.trial import TrialState

    ahead = [t for t in study.get_trials(deepcopy=False)
             if _counts(t) or (t.state == TrialState.RUNNING and t.number < number)]
    return len(ahead) >= trials


async def _power_rank(space: Any, dev: Benchmark, runtime: Runtime, study: Any, items: float | None, concurrency: int) -> None:
    from search.archon_space import ArchonSpace
    from search.power_rank import study_ranking

    if isinstance(space, ArchonSpace):
        await study_ranking(space, dev, runtime, study, items=items, concurrency=concurrency)


def _spent_outside_trials(study: Any) -> Any:
    """What the study's power rankings and final rescorings spent (``study_ranking``, ``finish_search``)."""
    from backends.budget import Spend
    from search.power_rank import RANKING_ATTR

    total = Spend()
    for key in (RANKING_ATTR, "final"):
        held = study.user_attrs.get(key) or {}
        total = total + Spend(held.get("spent_usd") or 0.0, held.get("spent_tokens") or 0, held.get("issued_calls") or 0)
    return total


def _spent(trials) -> Any:
    from backends.budget import Spend

    total = Spend()
    for t in trials:
        a = t.user_attrs
        total = total + Spend(a.get("spent_usd") or 0.0, a.get("spent_tokens") or 0, a.get("issued_calls") or 0)
    return total


async def _run_trial(trial, spec, store, study, dev, sizes, runtime, concurrency, per_query, cost, multi) -> tuple[str, dict]:
    """Score one trial on growing subsets; tell the study. Returns the state it ended in and what was measured."""
    from optuna.trial import TrialState

    from archon.bounds import calls_per_query
    from archon.evals.runner import evaluate

    trial.set_user_attr("pipeline", spec.to_yaml())
    bound = calls_per_query(spec)
    trial.set_user_attr("calls_bound", bound)
    if per_query.calls is not None and bound > per_query.calls:
        trial.set_user_attr("skipped", "over the per-query call limit")
        trial.set_user_attr("infeasible", f"up to {bound} calls per query; the limit is {per_query.calls}")
        trial.set_constraint("per_query", float(bound - per_query.calls))  # TPE and NSGA-II steer away from it
        study.tell(trial, state=TrialState.PRUNED)
        return "skipped", {}
    budget = runtime.budget
    before = budget.spent
    beat = asyncio.create_task(_heartbeat(store, trial._trial_id))
    state, values, m = TrialState.COMPLETE, None, {}
    try:
        for step, n in enumerate(sizes):
            run = await evaluate(spec, dev.head(n), runtime, concurrency=concurrency, trial=trial.number)
            if budget.exhausted:
                state = TrialState.FAIL
                trial.set_user_attr("stopped", budget.exhausted)
                break
            m = measure(run.results, runtime)
            why = _over(m, per_query)
            if why:
                trial.set_user_attr("infeasible", why)
                trial.set_constraint("per_query", 1.0)
                state = TrialState.PRUNED
                break
            if not multi:
                trial.report(m["score"], step)
                if step < len(sizes) - 1 and trial.should_prune():
                    state = TrialState.PRUNED
                    break
    finally:
        beat.cancel()
    if not trial.user_attrs.get("infeasible"):
        trial.set_constraint("per_query", 0.0)
    spent = budget.spent - before
    for key, value in {**m, "spent_usd": spent.usd, "spent_tokens": spent.tokens, "issued_calls": spent.calls}.items():
        trial.set_user_attr(key, value)
    if state == TrialState.COMPLETE:
        values = [m["score"], m[COST_KEYS[cost]] or 0.0] if multi else m["score"]
    study.tell(trial, values, state=state)
    return state.name.lower(), m


def _over(m: dict[str, Any], limit: PerQuery) -> str | None:
    if limit.tokens is not None and (m["tokens_per_query"] or 0) > limit.tokens:
        return f"{m['tokens_per_query']:.0f} tokens per query; the limit is {limit.tokens:g}"
    if limit.usd is not None and (m["cost_per_query_usd"] or 0.0) > limit.usd:  # unknown: the budget meters it
        return f"${m['cost_per_query_usd']:.6f} per query; the limit is ${limit.usd:g}"
    return None
