"""score with ``method: reward_model``: a reward-model server (vLLM's Classification API, ``/classify``)
scores each (query, candidate) conversation, over real HTTP to the fake server on 127.0.0.1, through
the backend's cache/record/limit/retry chain."""

from __future__ import annotations

import pytest

from archon import ConfigError, Pipeline, run
from archon.bounds import calls_per_query
from archon.exceptions import BackendRequestError
from archon.testing.fake_server import FakeOpenAIServer
from backends.doubles import FunctionBackend

QUERY = "What is 2 + 2?"
REWARDS = {"answer 0": 0.2, "answer 1": 0.9, "answer 2": 0.55}


def reward(messages: list[dict]) -> list[float]:
    """A one-output reward model (sigmoid of the reward), scoring the assistant's turn."""
    return [REWARDS.get(messages[-1]["content"], 0.0)]


def reply(prompt: str, k: int) -> str:
    return f"answer {k}"


def pipeline(base_url: str, n: int = 3, **kw) -> Pipeline:
    p = Pipeline("rm", backends={"srv": {"base_url": base_url}})
    d = p.add("draft", "generate", model="srv/m", samples=n)
    p.add("best", "score", inputs=d, model="srv/rm", method="reward_model", **kw)
    return p


def test_a_reward_model_server_scores_every_candidate_over_http(tmp_path):
    from stores.store import get_store

    db = f"sqlite:///{tmp_path / 'rm.db'}"
    with FakeOpenAIServer(reply=reply, reward=reward) as srv:
        spec = pipeline(srv.base_url, top_k=2).build()
        res = run(spec, QUERY, db=db)
        best = res.candidates["best"]
        assert [c.text for c in best] == ["answer 1", "answer 2"] and [c.score for c in best] == [0.9, 0.55]
        assert best[0].meta["score_method"] == "reward_model" and best[0].meta["reward_probs"] == [0.9] and not best[0].notes
        scored = [e for e in srv.log if e.path == "/classify"]
        assert len(scored) == 3 and {e.body["model"] for e in scored} == {"rm"}
        assert sorted(e.body["messages"][1]["content"] for e in scored) == ["answer 0", "answer 1", "answer 2"]
        assert all(e.body["messages"][0] == {"role": "user", "content": QUERY} for e in scored)
        assert all(e.body["messages"][1]["role"] == "assistant" for e in scored)
        assert res.calls == srv.requests == 1 + 3 == calls_per_query(spec)
        rows = [r for r in get_store(db).calls(run_id=res.run_id) if r["node_id"] == "best"]
        assert len(rows) == 3 and all(r["completion_tokens"] == 0 and r["prompt_tokens"] > 0 and r["status"] == "ok" for r in rows)
        # The scores replay from the cache: no request reaches the server again.
        again = run(spec, QUERY, db=db)
        assert srv.requests == 4 and again.cached_calls == again.calls == 4
        assert [c.score for c in again.candidates["best"]] == [0.9, 0.55]


def test_a_raw_reward_outside_zero_to_one_is_squashed_with_a_note():
    with FakeOpenAIServer(reply=reply, reward=lambda messages: [2.0]) as srv:
        (c,) = run(pipeline(srv.base_url, n=1), QUERY, db=False).candidates["best"]
    assert c.score == pytest.approx(1 / (1 + 2.718281828 ** -2.0)) and c.meta["reward"] == 2.0
    assert any("outside [0, 1]" in n for n in c.notes)


def test_a_classifier_is_read_by_its_last_class():
    with FakeOpenAIServer(reply=reply, reward=lambda messages: [0.7, 0.3]) as srv:
        (c,) = run(pipeline(srv.base_url, n=1), QUERY, db=False).candidates["best"]
    assert c.score == pytest.approx(0.3) and c.meta["reward_probs"] == [0.7, 0.3]


def test_a_server_without_the_classification_api_fails_the_run_naming_it():
    with FakeOpenAIServer(reply=reply) as srv, pytest.raises(BackendRequestError, match="Classification API"):
        run(pipeline(srv.base_url, n=1), QUERY, db=False)


def test_a_backend_that_cannot_score_is_a_clear_error():
    p = Pipeline("rm")
    p.add("best", "score", inputs=p.add("draft", "generate", model="fake/m"), model="fake/rm", method="reward_model")
    with pytest.raises(ConfigError, match=r"node 'best': backend 'fake' \(kind FunctionBackend\) cannot score with a reward "
                                          "model: use method judge or yes_prob"):
        run(p, QUERY, backends={"fake": FunctionBackend(lambda req, k: "d")}, db=False)
