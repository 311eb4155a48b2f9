"""Archon's search, end to end: the original ITAS example search config imported as a space, then
``archon search`` on a local server where one model answers right and the other wrong: the power
ranking puts the good one first, and model_top_k: 1 searches with it."""

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


@pytest.mark.skipif(not EXAMPLE.is_file(), reason=f"the ITAS example search config is not in {CONFIGS}")
def test_itas_example_config_power_ranks_then_searches_with_the_better_model(tmp_path):
    items = write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i + 3} plus one?", "answer": str(i + 4)}) + "\n" for i in range(8)))
    env = {**os.environ, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 's.db'}"}
    space = tmp_path / "space.yaml"
    imported = _run("import-archon", "--search", str(EXAMPLE), "--backend", "srv", "--out", str(space), env=env)
    assert imported.returncode == 0, imported.stderr
    data = yaml.safe_load(space.read_text())
    assert data["archon"]["models"] == [BAD, GOOD] and data["archon"]["model_top_k"] == [1, 2]
    assert data["archon"]["maximum_inference_calls"] == 20 and "--sampler tpe --trials 2" in imported.stderr
    with TwoModels() as srv:
        data["backends"] = {"srv": {"base_url": srv.base_url}}
        space.write_text(yaml.safe_dump(data))
        args = ["search", str(space), "--benchmark", str(items), "--trials", "2", "--power-rank", "4", "--seed", "0", "--json"]
        out = _run(*args, env=env)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        ranking = [(p["model"], p["score"], p["n"]) for p in res["power_ranking"]]
        assert ranking == [(GOOD, 1.0, 4), (BAD, 0.0, 4)]
        alone = {str(yaml.safe_load(t["pipeline"])["nodes"][0]["model"]): t for t in res["leaderboard"] if t["state"] == "complete"}
        # model_top_k: 1 is the power ranking's first model alone, and it answers every item right
        assert alone[GOOD]["score"] == 1.0 and BAD not in alone
        assert res["best"]["score"] == 1.0 and GOOD in res["best"]["pipeline"]
        sent = srv.requests
        again = _run(*args, env=env)  # the same command: ranking and trials come from the store and the cache
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["power_ranking"] == res["power_ranking"] and srv.requests == sent


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
