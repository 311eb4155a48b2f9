"""Archon's search space: its construction rules, its call bound, its size, and its file form."""

from __future__ import annotations

import pytest
from optuna.trial import FixedTrial

from archon.bounds import calls_per_query
from archon.exceptions import SpecError
from search.archon_space import ArchonSpace
from search.space import load_space
from tests.conftest import EXAMPLES, write

MODELS = ["srv/a", "srv/b", "srv/c"]
FULL = {"models": MODELS, "model_top_k": [1, 2, 3], "sample_top_k": [1, 2], "fuser_layers": [[0, 1, 3], [0, 2], [0, 1]],
        "critic": [False, True], "ranker": [False, True], "ranker_top_k": 2, "check": ["none", "verify", "unit_test"]}


def _specs(space):
    for cfg in space.configurations():
        params = {k: v for k, v in cfg.items() if k != "calls"}
        yield cfg, space.sample(FixedTrial(params))


def test_every_pipeline_follows_the_construction_rules_and_its_calls_are_the_static_bound():
    space = ArchonSpace(FULL)
    seen = set()
    for cfg, spec in _specs(space):
        ids = [n.id for n in spec.nodes]
        ops = [n.op for n in spec.nodes]
        assert ops[0] == "generate" and not spec.nodes[0].inputs  # generators first
        for i, op in enumerate(ops):
            if op == "critique":  # a critic comes before the ranker and fuser that read it
                assert ops[i + 1] in ("rank", "fuse") and list(spec.nodes[i + 1].inputs) == [ids[i]]
            if op == "write_tests":  # tests are always followed by their evaluator
                assert ops[i + 1] == "unit_test" and ids[i] in spec.nodes[i + 1].inputs
        assert "unit_test" not in ops or "write_tests" in ops
        assert calls_per_query(spec) == cfg["calls"]
        seen.add(spec.to_yaml())
    # no two configurations are the same pipeline; the count is the product of the axes where a
    # missing fusion layer ends the stack: 3 generator sets x 2 samples x 3 checks x (1 without
    # fusion + 6 stacks ([1], [3], [1,2], [3,2], [1,2,1], [3,2,1]) x 4 critic/ranker choices) = 18 x 25
    assert len(seen) == space.count() == 18 * 25


def test_models_come_from_the_ranking_best_first():
    space = ArchonSpace(FULL)
    space.ranking = ["srv/c", "srv/a", "srv/b"]
    spec = space.sample(FixedTrial({"model_top_k": 2, "sample_top_k": 1, "check": "verify", "fuser_layer_1": 1,
                                    "fuser_layer_2": 0, "critic": True, "ranker": False}))
    by_id = {n.id: n for n in spec.nodes}
    assert by_id["generate"].config.model == ["srv/c", "srv/a"]
    assert by_id["verify"].config.model == by_id["critic_1"].config.model == by_id["fuse_1"].config.model == "srv/c"
    assert spec.output == "fuse_1"  # one fuser leaves one candidate: no final fuser


def test_the_call_limit_cuts_the_count():
    space = ArchonSpace({**FULL, "maximum_inference_calls": 4})
    within = list(space.configurations())
    assert 0 < len(within) < space.count(within_budget=False) and all(c["calls"] <= 4 for c in within)
    # choices larger than the models available fold into the largest: k=5 of 3 models is k=3
    assert ArchonSpace({"models": MODELS, "model_top_k": [3, 5]}).count() == 1


def test_space_files_load_and_name_their_mistakes(tmp_path):
    space = load_space(str(write(tmp_path, "s.yaml", "name: mine\narchon:\n  models: [srv/a, srv/b]\n  model_top_k: [1, 2]\n")))
    assert isinstance(space, ArchonSpace) and space.name == "mine" and space.count() == 2
    with pytest.raises(SpecError, match=r"archon\.model_topk"):
        load_space(str(write(tmp_path, "bad.yaml", "archon:\n  models: [srv/a]\n  model_topk: [1]\n")))
    with pytest.raises(SpecError, match="unknown key"):
        load_space(str(write(tmp_path, "both.yaml", "archon:\n  models: [srv/a]\nextra: 1\n")))


def test_the_example_space_loads():
    space = load_space(str(EXAMPLES / "spaces" / "archon.yaml"))
    assert isinstance(space, ArchonSpace) and space.max_calls == 20
    assert 0 < space.count() < space.count(within_budget=False)
