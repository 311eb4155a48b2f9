"""Pipeline files and the builder: what is accepted, and the messages for what is not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from archon import Pipeline, SpecError, load_pipeline, parse_pipeline, pipeline_json_schema
from tests.conftest import EXAMPLES, write

GOOD = """
name: srf
nodes:
  - id: draft
    op: generate
    model: openai/gpt-4o-mini
    samples: 3
  - id: top
    op: rank
    inputs: [draft]
    model: openai/gpt-4o-mini
    top_k: 2
  - id: answer
    op: fuse
    inputs: [top]
    model: openai/gpt-4o
output: answer
"""


def errors(tmp_path, text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_pipeline(write(tmp_path, "p.yaml", text))
    return str(info.value)


def test_good_file_parses(tmp_path):
    spec = load_pipeline(write(tmp_path, "p.yaml", GOOD))
    assert [n.id for n in spec.nodes] == ["draft", "top", "answer"]
    assert spec.node("draft").config.samples == 3
    assert spec.output == "answer"
    assert spec.model_refs() == ["openai/gpt-4o", "openai/gpt-4o-mini"]


def test_round_trip_through_yaml(tmp_path):
    spec = load_pipeline(write(tmp_path, "p.yaml", GOOD))
    again = load_pipeline(write(tmp_path, "q.yaml", spec.to_yaml()))
    assert again.to_dict() == spec.to_dict()


def test_builder_matches_yaml(tmp_path):
    p = Pipeline("srf")
    d = p.add("draft", "generate", model="openai/gpt-4o-mini", samples=3)
    t = p.add("top", "rank", inputs=[d], model="openai/gpt-4o-mini", top_k=2)
    p.add("answer", "fuse", inputs=t, model="openai/gpt-4o")
    assert p.build().to_dict() == load_pipeline(write(tmp_path, "p.yaml", GOOD)).to_dict()


def test_misspelled_key_names_file_node_key_and_fix(tmp_path):
    msg = errors(tmp_path, GOOD.replace("samples: 3", "sampels: 3"))
    assert "p.yaml" in msg and "node 'draft'" in msg and "'sampels'" in msg and "Did you mean 'samples'?" in msg


def test_unknown_op_suggests(tmp_path):
    msg = errors(tmp_path, GOOD.replace("op: rank", "op: rnak"))
    assert "node 'top'" in msg and "unknown op 'rnak'" in msg and "Did you mean 'rank'?" in msg


def test_missing_input_suggests(tmp_path):
    msg = errors(tmp_path, GOOD.replace("inputs: [draft]", "inputs: [drafts]"))
    assert "node 'top'" in msg and "no node 'drafts'" in msg and "Did you mean 'draft'?" in msg


def test_cycle_named(tmp_path):
    text = GOOD.replace("  - id: draft\n    op: generate\n", "  - id: draft\n    op: generate\n    inputs: [answer]\n")
    msg = errors(tmp_path, text)
    assert "cycle" in msg and "draft" in msg and "answer" in msg


def test_missing_and_unreachable_output(tmp_path):
    assert "Did you mean 'answer'?" in errors(tmp_path, GOOD.replace("output: answer", "output: answr"))
    text = GOOD.replace("output: answer", "output: top")
    assert "node 'answer': does not feed the output 'top'" in errors(tmp_path, text)


def test_bad_value_names_field(tmp_path):
    msg = errors(tmp_path, GOOD.replace("samples: 3", "samples: 0"))
    assert "node 'draft'" in msg and "field 'samples'" in msg


def test_unknown_backend_and_bad_model_ref(tmp_path):
    msg = errors(tmp_path, GOOD.replace("model: openai/gpt-4o\n", "model: opneai/gpt-4o\n"))
    assert "node 'answer'" in msg and "unknown backend 'opneai'" in msg and "Did you mean 'openai'?" in msg
    assert "'<backend>/<model name>'" in errors(tmp_path, GOOD.replace("model: openai/gpt-4o\n", "model: gpt-4o\n"))


def test_all_problems_reported_at_once(tmp_path):
    msg = errors(tmp_path, GOOD.replace("samples: 3", "sampels: 3").replace("top_k: 2", "topk: 2"))
    assert "sampels" in msg and "topk" in msg


def test_top_level_typo_and_backend_typo(tmp_path):
    assert "Did you mean 'output'?" in errors(tmp_path, GOOD.replace("output: answer", "outptu: answer"))
    text = "backends:\n  fast:\n    max_concurency: 3\n" + GOOD
    msg = errors(tmp_path, text)
    assert "backend 'fast'" in msg and "Did you mean 'max_concurrency'?" in msg


def test_base_url_env_expansion(monkeypatch):
    data = {"backends": {"x": {"base_url": "${MY_URL:-http://127.0.0.1:1/v1}"}}, "nodes": [{"id": "a", "op": "generate", "model": "x/m"}]}
    assert parse_pipeline(data).backends["x"].base_url == "http://127.0.0.1:1/v1"
    monkeypatch.setenv("MY_URL", "http://h:2/v1")
    assert parse_pipeline(data).backends["x"].base_url == "http://h:2/v1"


def test_schema_has_every_op_and_rejects_extra():
    schema = pipeline_json_schema()
    text = json.dumps(schema)
    for op in ("generate", "ensemble", "rank", "fuse"):
        assert f'"const": "{op}"' in text
    assert schema["additionalProperties"] is False


def test_examples_validate():
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    out = subprocess.run([sys.executable, "-m", "archon", "validate", *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "change, expected",
    [
        (("samples: 3", "sampels: 3"), "Did you mean 'samples'?"),
        (("op: rank", "op: rnak"), "unknown op 'rnak'"),
        (("inputs: [draft]", "inputs: [drafts]"), "no node 'drafts'"),
        (("  - id: draft\n    op: generate\n", "  - id: draft\n    op: generate\n    inputs: [answer]\n"), "cycle"),
    ],
)
def test_cli_validate_exit_2_without_traceback(tmp_path, change, expected):
    path = write(tmp_path, "bad.yaml", GOOD.replace(*change))
    out = subprocess.run([sys.executable, "-m", "archon", "validate", str(path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert expected in out.stderr and str(path) in out.stderr
    assert "Traceback" not in out.stderr


def test_to_yaml_keeps_backend_variables_unexpanded(monkeypatch):
    monkeypatch.setenv("SOME_URL", "http://127.0.0.1:9/v1")
    spec = parse_pipeline({"backends": {"srv": {"base_url": "${SOME_URL}"}}, "nodes": [{"id": "a", "op": "generate", "model": "srv/m"}]})
    assert spec.backends["srv"].base_url == "http://127.0.0.1:9/v1"
    assert "${SOME_URL}" in spec.to_yaml() and "127.0.0.1:9" not in spec.to_yaml()


def test_checks_live_beside_the_spec_not_in_the_graph():
    """Reading and checking a pipeline needs neither the graph nor LangGraph: the checks are spec-side
    (archon.spec_checks), and archon.graph keeps their old names importable."""
    code = ("import sys; from archon.spec import parse_pipeline; "
            "parse_pipeline({'nodes': [{'id': 'a', 'op': 'generate', 'model': 'openai/m'}]}); "
            "print(sorted(m for m in sys.modules if m == 'archon.graph' or m.startswith('langgraph')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=EXAMPLES.parent)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"

    import archon.graph
    import archon.spec_checks

    assert all(getattr(archon.graph, name) is getattr(archon.spec_checks, name) for name in archon.spec_checks.__all__)
