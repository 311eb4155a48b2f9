"""Archon's search, end to end: the original ITAS example search config imported as a space, then
``archon search`` on a local server where one model answers right and the other wrong: the power
ranking puts the good one first, and model_top_k: 1 searches with it. The ranking is kept in the
study (``--show`` prints it, a resumed search reuses it, new models are ranked again) and its calls
are in the search's totals and under its budget."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from archon.testing.fake_server import FakeOpenAIServer
from tests.conftest import ROOT, write

CONFIGS = Path(os.environ.get("ARCHON_CONFIGS_DIR") or ROOT.parent / "shared" / "archon_configs")
EXAMPLE = CONFIGS / "itas_search_configs/src/archon/itas_algorithms/search_configs/example_search_config.json"
GOOD, BAD = "srv/gpt-4-turbo-2024-04-09", "srv/claude-3-haiku-20240307"  # the config lists the bad one first


class TwoModels(FakeOpenAIServer):
    """gpt-4-turbo adds one, as asked; claude-3-haiku always says 0."""

    def _completion(self, chat, prompt, body):
        good = "gpt-4-turbo" in str(body.get("model"))
        self.reply = lambda p, i: _answer(p) if good else "The answer is 0."
        return super()._completion(chat, prompt, body)


def _answer(prompt: str) -> str:
    nums = re.findall(r"What is (\d+) plus one", prompt)
    return f"The answer is {int(nums[0]) + 1 if nums else 0}."


def _run(*args, env):
    return subprocess.run([sys.executable, "-m", "archon", *args], capture_output=True, text=True, env=env, timeout=120)


needs_example = pytest.mark.skipif(not EXAMPLE.is_file(), reason=f"the ITAS example search config is not in {CONFIGS}")


def _imported(tmp_path):
    """The example config imported (``space.yaml``), 8 items, and an environment with its own store."""
    items = write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i + 3} plus one?", "answer": str(i + 4)}) + "\n" for i in range(8)))
    env = {**os.environ, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 's.db'}"}
    space = tmp_path / "space.yaml"
    imported = _run("import-archon", "--search", str(EXAMPLE), "--backend", "srv", "--out", str(space), env=env)
    assert imported.returncode == 0, imported.stderr
    return space, items, env, imported


def _serve(space: Path, srv: FakeOpenAIServer, models: list[str] | None = None) -> None:
    """Point the imported space at ``srv`` (and give it ``models``)."""
    data = yaml.safe_load(space.read_text())
    data["backends"] = {"srv": {"base_url": srv.base_url}}
    if models is not None:
        data["archon"]["models"] = models
    space.write_text(yaml.safe_dump(data))


def _search_args(space: Path, items: Path, power_rank: str = "4") -> list[str]:
    return ["search", str(space), "--benchmark", str(items), "--trials", "2", "--power-rank", power_rank, "--seed", "0", "--json"]


def _search(*args: str, env) -> dict:
    out = _run(*args, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@needs_example
def test_itas_example_config_power_ranks_then_searches_with_the_better_model(tmp_path):
    space, items, env, imported = _imported(tmp_path)
    data = yaml.safe_load(space.read_text())
    assert data["archon"]["models"] == [BAD, GOOD] and data["archon"]["model_top_k"] == [1, 2]
    assert data["archon"]["maximum_inference_calls"] == 20 and "--sampler tpe --trials 2" in imported.stderr
    with TwoModels() as srv:
        _serve(space, srv)
        args = _search_args(space, items)
        res = _search(*args, env=env)
        ranking = [(p["model"], p["score"], p["n"]) for p in res["power_ranking"]]
        assert ranking == [(GOOD, 1.0, 4), (BAD, 0.0, 4)]
        alone = {str(yaml.safe_load(t["pipeline"])["nodes"][0]["model"]): t for t in res["leaderboard"] if t["state"] == "complete"}
        # model_top_k: 1 is the power ranking's first model alone, and it answers every item right
        assert alone[GOOD]["score"] == 1.0 and BAD not in alone
        assert res["best"]["score"] == 1.0 and GOOD in res["best"]["pipeline"]
        # the ranking's calls are in the totals: requested beside the trials' (and the final rescoring's),
        # and every request the server saw (ranking, trials, rescoring) is counted as issued
        ranked_calls = sum(p["calls"] for p in res["power_ranking"])
        assert ranked_calls == 8 and res["calls_requested"] > ranked_calls + sum(t["calls"] for t in res["leaderboard"])
        assert res["calls_issued"] == srv.requests > sum(p["calls"] - p["cached_calls"] for p in res["power_ranking"]) > 0
        sent = srv.requests
        rerun = _search(*args, env=env)  # the same command: ranking and trials come from the store and the cache
        assert rerun["power_ranking"] == res["power_ranking"] and srv.requests == sent and rerun["calls_issued"] == sent

        shown = _run("search", "--show", str(space), "--benchmark", str(items), env=env)  # from the study alone
        assert shown.returncode == 0, shown.stderr
        table = shown.stdout.split("Power ranking", 1)[1].split("\n\n", 1)[0].splitlines()
        assert table[1].split() == ["rank", "model", "score", "n", "calls"]
        assert table[2].split() == ["1", GOOD, "100.0%", "4", "4"] and table[3].split() == ["2", BAD, "0.0%", "4", "4"]
        assert shown.stdout.index("Power ranking") < shown.stdout.index("trial  state") and srv.requests == sent

        # a text run prints the ranking once, in the report (no second copy on stderr)
        text = _run(*args[:-1], env=env)
        assert text.returncode == 0, text.stderr
        assert text.stdout.count("Power ranking") == 1 and "power ranking" not in text.stderr.lower()


@needs_example
def test_power_ranking_ranks_again_when_the_models_change(tmp_path):
    space, items, env, _ = _imported(tmp_path)
    with TwoModels() as srv:
        _serve(space, srv)
        _search(*_search_args(space, items), env=env)
        sent = srv.requests
        _serve(space, srv, [BAD, GOOD, "srv/newcomer"])  # the newcomer answers 0, like the bad one
        res = _search(*_search_args(space, items), env=env)
        ranking = [(p["model"], p["score"], p["n"]) for p in res["power_ranking"]]
        assert ranking == [(GOOD, 1.0, 4), (BAD, 0.0, 4), ("srv/newcomer", 0.0, 4)]
        assert srv.requests - sent >= 4  # the newcomer's 4 items were asked; the others replay from the cache
        fewer = _search(*_search_args(space, items, power_rank="2"), env=env)  # fewer items: ranked again
        assert {p["n"] for p in fewer["power_ranking"]} == {2}


@needs_example
def test_the_search_budget_bounds_the_power_ranking(tmp_path):
    space, items, env, _ = _imported(tmp_path)
    with TwoModels() as srv:
        _serve(space, srv)
        res = _search(*_search_args(space, items), "--max-calls", "3", env=env)  # the ranking alone needs 8 calls
        assert srv.requests <= 3 and res["calls_issued"] == srv.requests and "call budget" in res["stopped"]
        assert res["power_ranking"] == [] and res["leaderboard"] == []  # a ranking cut short is not kept, nor searched with
        res = _search(*_search_args(space, items), "--max-calls", "100", env=env)  # a larger budget continues
        # ranked again in full: the items the budget refused are asked now, not kept as failures
        assert [(p["model"], p["score"], p["n"]) for p in res["power_ranking"]] == [(GOOD, 1.0, 4), (BAD, 0.0, 4)]
        assert res["stopped"] is None
        assert res["calls_issued"] == srv.requests <= 100  # both runs' requests, the cut-short ranking's included


def test_import_search_refuses_unknown_model_types_and_bad_json(tmp_path):
    cfg = write(tmp_path, "search.json", json.dumps({"models_available": ["configs/individual_models/mystery.json"],
                                                       "model_top_k_choices": [1]}))
    out = _run("import-archon", "--search", str(cfg), env=dict(os.environ))
    assert out.returncode == 2 and "mystery.json" in out.stderr and "--backend" in out.stderr and "Traceback" not in out.stderr
    ok = _run("import-archon", "--search", str(cfg), "--backend", "srv", "--out", str(tmp_path / "s.py"), env=dict(os.environ))
    assert ok.returncode == 0, ok.stderr
    from search.space import load_space

    assert load_space(str(tmp_path / "s.py")).axes.models == ["srv/mystery"]
    broken = write(tmp_path, "broken.json", '{"models_available": [1,}')
    bad = _run("import-archon", "--search", str(broken), env=dict(os.environ))
    assert bad.returncode == 2 and "line 1, column" in bad.stderr
