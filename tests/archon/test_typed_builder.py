"""Typed node builders: Pipeline.add with a settings model (archon.nodes) gives the pipeline the
string form gives, and a type checker catches a wrong setting before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from archon import Pipeline, SpecError, nodes
from archon import registry
from archon.registry import get_operator
from operators.base import OpConfig, Operator

ROOT = Path(__file__).resolve().parents[2]


def typed() -> Pipeline:
    p = Pipeline("every-op")
    d = p.add("draft", nodes.Generate(model="fake/m", samples=4, temperature=0.9))
    pool = p.add("pool", "ensemble", nodes.Generate(model=["fake/a", "fake/b"]))
    docs = p.add("docs", nodes.Retrieve(corpus="docs/", top_k=2))
    c = p.add("crit", nodes.Critique(model="fake/m"), inputs=[d, pool, docs])
    v = p.add("check", nodes.Verify(model="fake/m"), inputs=c)
    top = p.add("top", nodes.Rank(model="fake/m", top_k=2), inputs=v)
    gauge = p.add("gauge", nodes.Route(model="fake/m", thresholds=[0.5], branches=["hard", "easy"]), inputs=top)
    tests = p.add("tests", nodes.WriteTests(model="fake/m", num_tests=3))
    p.add("hard", nodes.UnitTest(tests="inputs"), inputs=[gauge, tests])
    p.add("easy", nodes.Vote(), inputs=gauge)
    p.add("answer", nodes.Merge(top_k=1), inputs=["hard", "easy"])
    return p


def by_name() -> Pipeline:
    p = Pipeline("every-op")
    d = p.add("draft", "generate", model="fake/m", samples=4, temperature=0.9)
    pool = p.add("pool", "ensemble", model=["fake/a", "fake/b"])
    docs = p.add("docs", "retrieve", corpus="docs/", top_k=2)
    c = p.add("crit", "critique", inputs=[d, pool, docs], model="fake/m")
    v = p.add("check", "verify", inputs=c, model="fake/m")
    top = p.add("top", "rank", inputs=v, model="fake/m", top_k=2)
    gauge = p.add("gauge", "route", inputs=top, model="fake/m", thresholds=[0.5], branches=["hard", "easy"])
    tests = p.add("tests", "write_tests", model="fake/m", num_tests=3)
    p.add("hard", "unit_test", inputs=[gauge, tests], tests="inputs")
    p.add("easy", "vote", inputs=gauge)
    p.add("answer", "merge", inputs=["hard", "easy"], top_k=1)
    return p


def test_typed_nodes_build_the_same_spec_as_op_names():
    assert typed().to_dict() == by_name().to_dict()
    spec = typed().build()
    assert spec == by_name().build()
    assert spec.to_yaml() == by_name().build().to_yaml()
    assert [n.op for n in spec.nodes][:2] == ["generate", "ensemble"]


def test_nodes_names_every_builtin_settings_model():
    """A new built-in op must get its short name here (ensemble shares generate's model)."""
    exported = {getattr(nodes, name) for name in nodes.__all__}
    assert exported == {get_operator(kind).Config for kind in registry.OPERATORS.names(origin="archon-llm")}
    assert all(getattr(nodes, name).__name__ == f"{name}Config" for name in nodes.__all__)


def test_a_bad_value_fails_when_the_model_is_built():
    with pytest.raises(ValidationError, match="samples"):
        nodes.Generate(model="fake/m", samples=0)
    with pytest.raises(ValidationError, match="samplez"):
        nodes.Generate(model="fake/m", samplez=4)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: p.add("d", nodes.Generate(model="fake/m"), samples=2), "in the GenerateConfig model or as keywords, not both"),
        (lambda p: p.add("d", "rank", nodes.Generate(model="fake/m")), "op 'rank' takes a RankConfig, not a GenerateConfig"),
        (lambda p: p.add("d", "genrate", nodes.Generate(model="fake/m")), "node 'd': field 'op': unknown op 'genrate'.*generate"),
    ],
)
def test_builder_misuse_is_a_spec_error_naming_the_node(call, message):
    with pytest.raises(SpecError, match=message):
        call(Pipeline("x"))


class LoneConfig(OpConfig):
    word: str = "hi"


def test_a_plugin_model_finds_its_op_and_an_unregistered_or_shared_one_asks_for_it(monkeypatch):
    with pytest.raises(SpecError, match=r"no registered op takes LoneConfig settings; name the op: p.add\('n', '<op>'"):
        Pipeline("x").add("n", LoneConfig())

    monkeypatch.setattr(registry, "OPERATORS", registry.OPERATORS.copy())  # the registration ends with the test

    @registry.register_operator
    class Lone(Operator[LoneConfig]):
        kind = "lone"
        summary = "Says a word."

    p = Pipeline("x")
    p.add("n", LoneConfig(word="yo"))
    assert p.nodes == [{"id": "n", "op": "lone", "word": "yo"}]

    @registry.register_operator
    class Twin(Operator[LoneConfig]):
        kind = "twin"
        summary = "Says the same word."

    with pytest.raises(SpecError, match=r"LoneConfig is the settings model of several ops \(lone, twin\); name one"):
        Pipeline("x").add("n", LoneConfig())
    Pipeline("x").add("n", "twin", LoneConfig())  # named: fine


GOOD = """
from archon import nodes
from archon.builder import Pipeline
from operators.generate import Generate

p = Pipeline("typed")
d = p.add("draft", nodes.Generate(model="fake/m", samples=4))
p.add("top", nodes.Rank(model="fake/m", top_k=2), inputs=[d])
p.add("pool", "ensemble", nodes.Generate(model=["fake/a", "fake/b"]))
p.add("old", "generate", model="fake/m", samples=2)
reveal_type(Generate("d", nodes.Generate(model="fake/m")).config)

# Every model with its required settings only: a default mypy cannot see (Field(0.7) instead of
# Field(default=0.7)) would show up here as a missing argument.
every = [
    nodes.Beam(model="fake/m"), nodes.Critique(model="fake/m"), nodes.Fuse(model="fake/m"), nodes.Generate(model="fake/m"), nodes.Merge(),
    nodes.Rank(model="fake/m"), nodes.Retrieve(corpus="docs/"), nodes.Route(thresholds=[0.5], branches=["a", "b"]),
    nodes.Refine(model="fake/m"), nodes.SampleUntil(model="fake/m"), nodes.Score(model="fake/m"), nodes.UnitTest(), nodes.Verify(model="fake/m"), nodes.Vote(),
    nodes.WriteTests(model="fake/m"),
]
"""

BAD = """
from archon import nodes
from archon.builder import Pipeline
from operators.generate import Generate

p = Pipeline("typed")
p.add("draft", nodes.Generate(model="fake/m", samplez=4))
p.add("draft", nodes.Generate(model="fake/m", samples="four"))
p.add("top", nodes.Rank(model="fake/m"), inputs=3)
n: str = Generate("d", nodes.Generate(model="fake/m")).config.samples
"""


def mypy(cache: Path, folder: Path, files: list[str]) -> tuple[int, str]:
    # silent: the library's own typing is not under test here, only what a user's call gets.
    # Relative names: mypy replays a cached module's errors with the path it had then.
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports", "--no-error-summary",
         "--cache-dir", str(cache), *files],
        capture_output=True, text=True, cwd=folder, timeout=600, env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    return res.returncode, res.stdout + res.stderr


def has_mypy() -> bool:
    return subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not has_mypy(), reason="mypy is not installed")
def test_mypy_checks_typed_nodes_and_operator_configs(tmp_path, request):
    assert all(f"nodes.{name}(" in GOOD for name in nodes.__all__)
    good, bad = "good.py", "bad.py"
    (tmp_path / good).write_text(GOOD)
    (tmp_path / bad).write_text(BAD)
    # One run for both files, with a cache kept between test sessions: mypy reads pydantic cold in ~40 s.
    pytest_cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy") if pytest_cache else tmp_path / "mypy-cache"
    code, out = mypy(cache, tmp_path, [good, bad])
    assert code == 1, out
    lines = out.splitlines()
    assert not [ln for ln in lines if ln.startswith(good) and ": error:" in ln], out
    assert f'{good}:11: note: Revealed type is "operators.generate.GenerateConfig"' in lines, out
    bad_errors = [ln.removeprefix(bad) for ln in lines if ln.startswith(bad)]
    assert any(ln.startswith(':7: error: Unexpected keyword argument "samplez"') for ln in bad_errors), out
    assert any(ln.startswith(':8: error: Argument "samples" to "GenerateConfig" has incompatible type "str"') for ln in bad_errors), out
    assert any(ln.startswith(":9: error:") and "add" in ln for ln in bad_errors), out
    assert any(ln.startswith(":10: error: Incompatible types in assignment") and '"int"' in ln for ln in bad_errors), out
