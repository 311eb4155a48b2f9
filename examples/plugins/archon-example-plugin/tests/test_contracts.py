"""The plug-in passes Archon's conformance suites: the same checks every built-in passes."""

from __future__ import annotations

from archon_example_plugin import Shorten, TemplateBackend

from archon.testing import BackendContract, OperatorContract


class TestShorten(OperatorContract):
    operator = Shorten
    config = {"model": "fake/m", "max_words": 3}
    inputs = ["a long first draft of an answer", "a second draft"]


class TestShortenOnTheQuery(OperatorContract):
    operator = Shorten
    config = {"model": "fake/m"}
    inputs = []


class TestTemplate(BackendContract):
    kind = "template"
    settings = {"template": "{model} #{sample}: {prompt}"}

    def make_backend(self, name, settings):
        return TemplateBackend(name, settings)

    def make_failing_backend(self, name, settings):
        return TemplateBackend(name, settings.model_copy(update={"max_prompt_chars": 1}))


def test_the_scorer_is_registered_and_adapted():
    import asyncio

    from archon.evals import Item, ScoreContext, get_scorer

    scorer = get_scorer("contains")
    item = Item("1", "q", "Paris", {})
    assert asyncio.run(scorer("It is PARIS.", item, ScoreContext())).value == 1.0
    assert asyncio.run(scorer("It is Lyon.", item, ScoreContext())).value == 0.0


def test_the_template_refuses_unknown_placeholders():
    import pytest
    from archon_example_plugin import TemplateSettings
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown placeholder"):
        TemplateSettings(template="{answer}")
