"""The samplers ``archon search --sampler`` names: TPE, random, grid (every value of every parameter,
found by walking the space) and NSGA-II (score and cost together)."""

from __future__ import annotations

__all__ = ["SAMPLERS", "make_sampler"]

from typing import TYPE_CHECKING, Any

from archon.exceptions import ConfigError, UserError, suggest

if TYPE_CHECKING:
    from search.space import FunctionSpace, SearchSpace

SAMPLERS = ("tpe", "random", "grid", "nsga2")


def make_sampler(name: str, seed: int | None, space: SearchSpace | FunctionSpace | None = None, trials: int | None = None) -> Any:
    """The Optuna sampler called ``name`` (tpe, random, grid, nsga2)."""
    import optuna

    if name == "tpe":
        # Optuna's 10 random trials first would make a short search (--trials 8) purely random.
        startup = 10 if trials is None else max(3, min(10, trials // 3))
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "grid":
        if space is None:
            raise ConfigError("the grid sampler needs the search space")
        return _ask_tell_grid(optuna)(_grid(space), seed=seed)
    raise UserError(f"unknown sampler '{name}'.{suggest(name, SAMPLERS)} Valid: {', '.join(SAMPLERS)}")


def _ask_tell_grid(optuna: Any) -> type:
    """Optuna's GridSampler, minus the ``study.stop()`` it calls once every grid point is done: under
    ask/tell, which the search uses, that raises RuntimeError inside ``tell`` (optuna#4121, #5141)
    and the last trial's result is lost. The search stops on its own (``--trials``); past the grid's
    size the sampler proposes points again, which the cache and the scored-pipeline check make free."""

    class AskTellGrid(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            try:
                super().after_trial(study, trial, state, values)
            except RuntimeError as exc:
                if "Study.stop" not in str(exc):
                    raise

    return AskTellGrid


def _grid(space: SearchSpace | FunctionSpace) -> dict[str, list[Any]]:
    """Every parameter's values; ranges must have a step to be gridded.

    A define-by-run space asks some parameters only on some paths (``rank`` only when samples > 1):
    the space is walked again with each known value of each parameter until no new one appears.
    """
    from search.space import _Recorder

    grid: dict[str, list[Any]] = {}

    class Collect(_Recorder):
        def __init__(self, fixed: dict[str, Any]):
            super().__init__()
            self.fixed = fixed

        def suggest_categorical(self, name, choices):
            grid.setdefault(name, list(choices))
            return self.fixed.get(name, choices[0])

        def suggest_int(self, name, low, high, step=1, log=False):
            grid.setdefault(name, list(range(low, high + 1, step)))
            return self.fixed.get(name, low)

        def suggest_float(self, name, low, high, step=None, log=False):
            if step is None:
                raise UserError(f"the grid sampler needs a 'step' on the float range '{name}'")
            n = int(round((high - low) / step))
            grid.setdefault(name, [round(low + i * step, 10) for i in range(n + 1)])
            return self.fixed.get(name, low)

    space.sample(Collect({}))
    tried: set[tuple[str, str]] = set()
    while todo := [(k, v) for k, vs in grid.items() for v in vs if (k, repr(v)) not in tried]:
        for k, v in todo:
            tried.add((k, repr(v)))
            space.sample(Collect({k: v}))
    return grid
