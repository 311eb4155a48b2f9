"""An original ITAS search config (``itas_algorithms/search_configs/*.json``) as an Archon search space.

What maps to what:

    model_top_k_choices, sample_top_k_choices   archon.model_top_k, archon.sample_top_k
    fuser_layer_{1,2,3}_choices                 archon.fuser_layers (0: no layer, and none after it)
    maximum_inference_calls                     archon.maximum_inference_calls (calls per query)
    models_available (individual model configs) archon.models ("<preset of its model_type>/<model>", or --backend)
    dataset_sample_for_power_ranking            archon.power_rank (a fraction of the benchmark)
    dataset_sample_for_search                   archon.search_sample
    a critic and a ranker (top 5) before each fusion layer, temperature 0.7, 2048 tokens (ITAS's own)

The rest are ``archon search`` options, given back as notes: benchmark, judge and baseline
(``--benchmark``), the search algorithm (``--sampler``), its iterations (``--trials``), and the configs
rescored at the end (``--rescore``). Output paths (``base_output_directory``) have no use here.
"""

from __future__ import annotations

__all__ = ["from_search_config", "is_search_config", "space_text"]

import json
from pathlib import Path
from typing import Any

from archon.exceptions import SpecError

_SAMPLERS = {"bayesian_optimization": "tpe", "random_search": "random", "grid_search": "grid"}
_BENCHMARKS = {"arena_hard_auto": "arena-hard", "mt_bench": "mt-bench", "alpaca_eval": "alpaca-eval", "mix_eval": "mixeval",
               "mix_eval_hard": "mixeval-hard", "code_contests": "codecontests"}


def is_search_config(data: Any) -> bool:
    """An ITAS search config rather than an Archon pipeline config."""
    return isinstance(data, dict) and "models_available" in data and "layers" not in data


def from_search_config(data: dict[str, Any], source: str = "<search config>", backend: str | None = None
                       ) -> tuple[dict[str, Any], list[str]]:
    """The space-file mapping for an ITAS search config, and notes on what becomes a command-line option."""
    from archon.import_archon import MODEL_TYPES

    if not is_search_config(data):
        raise SpecError(f"{source}: not an ITAS search config (no 'models_available'); for a pipeline config drop --search.")
    problems, models = [], []
    for path in data["models_available"]:
        name, model_type = _model_of(str(path), Path(source))
        if backend is None and model_type not in MODEL_TYPES:
            where = f"model_type {model_type!r}" if model_type else "no model config found next to the search config"
            problems.append(f"{source}: models_available: {path}: {where}; pass --backend NAME to serve every model from one backend.")
            continue
        models.append(f"{backend or MODEL_TYPES[str(model_type)]}/{name}")
    if problems:
        raise SpecError(problems)
    axes: dict[str, Any] = {
        "models": models,
        "model_top_k": list(data.get("model_top_k_choices") or [1]),
        "sample_top_k": list(data.get("sample_top_k_choices") or [1]),
        "fuser_layers": [list(data.get(f"fuser_layer_{i}_choices") or [0]) for i in (1, 2, 3)],
        "critic": [True], "ranker": [True], "ranker_top_k": 5, "check": ["none"],
        "temperature": 0.7, "max_tokens": 2048,
    }
    for key, ours in (("maximum_inference_calls", "maximum_inference_calls"), ("dataset_sample_for_power_ranking", "power_rank"),
                      ("dataset_sample_for_search", "search_sample")):
        if data.get(key) is not None:
            axes[ours] = data[key]
    return {"name": Path(source).stem.replace("_", "-"), "archon": axes}, _notes(data)


def _model_of(path: str, config: Path) -> tuple[str, str | None]:
    """The model name and model_type of an individual model config, looked for beside the search config
    and in each folder above it (ITAS paths are relative to Archon's source folder)."""
    for folder in config.resolve().parents:
        candidate = folder / path
        if candidate.is_file():
            try:
                comp = json.loads(candidate.read_text(encoding="utf-8"))["layers"][0][0]
                return str(comp["model"]), comp.get("model_type")
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                break
    return Path(path).stem, None


def _notes(data: dict[str, Any]) -> list[str]:
    notes = []
    bench = data.get("benchmark")
    if bench:
        judge = " ".join(f"{k.split('_')[0]} {Path(str(data[k])).stem}" for k in ("judge_model", "baseline_model") if data.get(k))
        notes.append(f"benchmark {bench}: --benchmark {_BENCHMARKS.get(str(bench), bench)}" + (f" ({judge})" if judge else ""))
    algo = data.get("search_algorithm_choice")
    if algo:
        trials = (int(data.get("init_points") or 0) + int(data.get("n_iter") or 0)) if algo == "bayesian_optimization" \
            else data.get("random_search_iterations") if algo == "random_search" else None
        notes.append(f"search_algorithm_choice {algo}: --sampler {_SAMPLERS.get(str(algo), 'tpe')}" + (f" --trials {trials}" if trials else ""))
    if data.get("number_of_archon_configs_for_final_ranking"):
        notes.append(f"number_of_archon_configs_for_final_ranking: --rescore {data['number_of_archon_configs_for_final_ranking']}")
    return notes


def space_text(space: dict[str, Any], notes: list[str], out: Path) -> str:
    """The space as the file ``out`` names: YAML (``.yaml``/``.yml``) or Python (``.py``, an ``ArchonSpace``)."""
    import yaml

    head = "".join(f"# {n}\n" for n in ["Archon search space imported from an ITAS search config.", *notes])
    if out.suffix == ".py":
        return (f'"""Archon search space imported from an ITAS search config."""\n{head}\n'
                "from search.archon_space import ArchonSpace\n\n"
                f"space = ArchonSpace({space['archon']!r}, name={space['name']!r})\n")
    return head + yaml.safe_dump(space, sort_keys=False)
