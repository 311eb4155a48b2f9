"""Each kind of bad input from issue 11 is an exit 2 naming the file, the place and the fix, found by
``archon validate`` (or at load) rather than by ``archon run``; nothing here reaches a network."""

from __future__ import annotations

import json

import pytest

from archon.exceptions import ConfigError
from tests.archon.fuzz_corpus import cli

GOOD = """
backends:
  fast: {base_url: "http://127.0.0.1:9/v1"}
nodes:
  - {id: draft, op: generate, model: fast/m}
"""


def write(tmp_path, name: str, data: str | bytes):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def refused(*args: str) -> str:
    """The error output of a command that must exit 2 without a traceback."""
    out = cli(*args)
    assert out.code == 2, (out.code, out.out, out.err)
    assert "Traceback" not in out.err and "unexpected" not in out.err, out.err
    return out.err


def test_alias_bomb_is_refused_quickly_and_in_little_memory(tmp_path):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb = "\n".join(lines) + "\n" + GOOD  # 9**10 values once expanded, in about 500 bytes
    path = write(tmp_path, "bomb.yaml", bomb)
    cli("validate", path)  # imports warm
    out = cli("validate", path, trace_memory=True)
    assert out.code == 2 and "aliases" in out.err and "expand to more than" in out.err
    assert out.seconds < 1.0 and out.peak_bytes < 20 * 2**20, (out.seconds, out.peak_bytes)


def test_aliases_that_share_settings_still_work(tmp_path):
    shared = """
backends:
  fast: {base_url: "http://127.0.0.1:9/v1"}
nodes:
  - {id: a, op: generate, <<: &common {model: fast/m, temperature: 0.2}}
  - {id: b, op: fuse, inputs: [a], <<: *common}
"""
    out = cli("validate", write(tmp_path, "shared.yaml", shared))
    assert out.code == 0, out.err


@pytest.mark.parametrize("text, expected", [
    ("name: " + "[" * 5000 + "]" * 5000 + "\n", "nest"),
    ("name: " + "[a, " * 5000 + "\n", "nested more than 64 levels"),
    ("name: &r [*r]\n" + GOOD, "a loop"),
    ("name: x\nnodes: [{id: a, op: generate, model: openai/x, samples: " + "9" * 5000 + "}]\n", "cannot be read"),
    ("name: x\x00\n", "not valid YAML"),
])
def test_yaml_shapes_that_used_to_crash(tmp_path, text, expected):
    assert expected in refused("validate", write(tmp_path, "p.yaml", text))


@pytest.mark.parametrize("data, expected", [
    (GOOD.encode("utf-16"), "UTF-16"),
    (GOOD.encode("utf-8") + "description: café\n".encode("latin-1"), "not UTF-8 at line 6, column 17"),
    (bytes(range(256)), "not UTF-8 at line"),
])
def test_files_that_are_not_utf8(tmp_path, data, expected):
    path = write(tmp_path, "p.yaml", data)
    assert expected in refused("validate", path)
    assert expected in refused("run", path, "--input", "hi")


def test_file_size_is_capped(tmp_path):
    path = write(tmp_path, "big.yaml", GOOD + "description: " + "x" * (10 * 2**20) + "\n")
    assert "larger than 10 MB" in refused("validate", path)


def test_binary_input_file(tmp_path):
    query = write(tmp_path, "q.bin", b"what\n\xff\xfe\x00 is it")
    err = refused("run", write(tmp_path, "p.yaml", GOOD), "--input-file", query)
    assert "q.bin" in err and "not UTF-8 at line 2, column 1 (byte offset 5" in err


@pytest.mark.parametrize("node_id", ["__start__", "__end__", "__pregel_pull", "__input__", "configurable", "a:b", "a|b", "x\ny"])
def test_node_ids_langgraph_refuses(tmp_path, node_id):
    text = GOOD.replace("id: draft", f"id: {json.dumps(node_id)}")
    err = refused("validate", write(tmp_path, "p.yaml", text))
    assert "node #1: field 'id'" in err


def test_reserved_id_rule_covers_installed_langgraph():
    from langgraph._internal._constants import RESERVED
    from langgraph.graph import END, START

    from archon.graph import node_id_problem

    for name in {START, END, *RESERVED}:
        assert node_id_problem(name), name
    assert node_id_problem("draft") is None and node_id_problem("step_2-b.final") is None


@pytest.mark.parametrize("url, expected", [
    ("http://[::1", "not a valid URL"),
    ("http://" + "a" * 70_000 + "/v1", "at most 2048"),
    ("http://a b/v1", "U+0020"),
    ("ftp://127.0.0.1/v1", "http:// or https://"),
    ("127.0.0.1:8000/v1", "http:// or https://"),
    ("http:///v1", "no host"),
    ("http://h:99999/v1", "port 99999"),
    ("", "empty"),
])
def test_bad_base_urls(tmp_path, url, expected):
    text = GOOD.replace('"http://127.0.0.1:9/v1"', json.dumps(url))
    err = refused("validate", write(tmp_path, "p.yaml", text))
    assert "backend 'fast': field 'base_url'" in err and expected in err


def test_url_with_a_lone_surrogate_from_the_python_api():
    # In a file, libyaml already refuses the escape; a builder or search space can still pass one.
    from backends.presets import check_url

    with pytest.raises(ValueError, match="U\\+D800"):
        check_url("http://x\ud800/v1")


@pytest.mark.parametrize("node", [
    "{id: v, op: vote, inputs: [draft], extractor: regex, pattern: '('}",
    "{id: v, op: route, inputs: [draft], model: fast/m, extractor: regex, pattern: '[', thresholds: [0.5], branches: [a, b]}",
])
def test_bad_regex_names_node_and_field(tmp_path, node):
    err = refused("validate", write(tmp_path, "p.yaml", GOOD + f"  - {node}\n"))
    assert "node 'v': field 'pattern': not a valid regular expression" in err


def test_openai_kind_without_base_url_is_refused(tmp_path):
    text = "backends:\n  fast: {kind: openai, api_key_env: FAST_KEY}\nnodes:\n  - {id: a, op: generate, model: fast/m}\n"
    err = refused("validate", write(tmp_path, "p.yaml", text))
    assert "backend 'fast': kind openai needs base_url (the server's /v1 URL); for OpenAI itself use the preset 'openai'" in err
    preset = "backends:\n  openai: {max_concurrency: 2}\nnodes:\n  - {id: a, op: generate, model: openai/gpt-4o-mini}\n"
    assert cli("validate", write(tmp_path, "preset.yaml", preset)).code == 0


def test_runtime_refuses_openai_kind_without_base_url():
    from archon.context import Runtime
    from backends.presets import OpenAISettings

    runtime = Runtime({"fast": OpenAISettings(api_key_env="FAST_KEY")}, store=False)
    with pytest.raises(ConfigError, match="kind openai needs base_url"):
        runtime.backend("fast")


@pytest.mark.parametrize("db", ["::::", "sqlite:archon.db", "postgresql://u@[::1", "a\x01b"])
def test_malformed_db_urls(tmp_path, monkeypatch, db):
    monkeypatch.chdir(tmp_path)
    err = refused("runs", "--db", db)
    assert "database URL" in err
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the typo


def _eval(tmp_path, bench: str) -> str:
    pipeline = write(tmp_path, "vote.yaml", "nodes:\n  - {id: v, op: vote, extractor: text}\n")
    return refused("eval", pipeline, "--benchmark", bench, "--json")


def test_null_answer_is_called_null(tmp_path):
    bench = write(tmp_path, "b.jsonl", '{"question": "q", "answer": "1"}\n{"question": "q2", "answer": null}\n')
    assert "b.jsonl:2: field 'answer' is null" in _eval(tmp_path, bench)


def test_lone_surrogate_in_a_question_names_file_and_line(tmp_path):
    bench = write(tmp_path, "b.jsonl", '{"question": "q", "answer": "1"}\n{"question": "bad \\ud800", "answer": "2"}\n')
    err = _eval(tmp_path, bench)
    assert "b.jsonl:2: field 'question' holds a lone surrogate \\ud800" in err


def test_deep_jsonl_record_names_its_line(tmp_path):
    bench = write(tmp_path, "b.jsonl", '{"question": "q", "answer": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    assert "b.jsonl:1: the record is nested too deeply" in _eval(tmp_path, bench)


def test_a_backend_instance_given_as_settings_says_where_it_goes():
    from archon import Runtime
    from backends.doubles import FunctionBackend

    with pytest.raises(ConfigError, match=r"backend 'fake': FunctionBackend is not backend settings; a backend instance goes "
                                          r"in backends=: Runtime\(backends=\{'fake': \.\.\.\}\)"):
        Runtime({"fake": FunctionBackend(lambda req, k: "x")}, store=False)  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="give settings such as OpenAISettings"):
        Runtime({"fast": {"base_url": "http://127.0.0.1:9/v1"}}, store=False)  # type: ignore[dict-item]
