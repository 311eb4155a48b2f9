"""A query that is a conversation (``Query.messages``): ``generate`` sends its messages to a chat model
when nothing else shapes the prompt, and is unchanged otherwise."""

from __future__ import annotations

import asyncio

from archon import CompiledPipeline, Pipeline, Runtime
from archon.types import Query
from backends.doubles import FunctionBackend

TALK = ({"role": "user", "content": "Hi {there}"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Again?"})


def _sent(query: Query, **node) -> list[tuple]:
    backend = FunctionBackend(lambda req, k: "ok")
    p = Pipeline("p")
    p.add("a", "generate", model="fake/m", **node)
    asyncio.run(CompiledPipeline(p.build()).run(query, Runtime(backends={"fake": backend}, store=False)))
    return [(r.mode, r.messages, r.prompt) for r in backend.requests]


def test_messages_are_sent_as_they_are_with_the_node_system_first():
    query = Query("User: Hi {there}\n\nAssistant: Hello.\n\nUser: Again?", messages=TALK)
    assert _sent(query) == [("chat", TALK, None)]
    assert _sent(query, system="Be brief.") == [("chat", ({"role": "system", "content": "Be brief."}, *TALK), None)]
    own = ({"role": "system", "content": "Judge."}, {"role": "user", "content": "Rate it."})
    assert _sent(Query("Judge.\n\nRate it.", messages=own), system="Be brief.") == [("chat", own, None)]


def test_without_messages_or_with_a_prompt_or_in_completion_mode_the_text_is_sent():
    query = Query("the transcript", messages=TALK)
    assert _sent(Query("plain")) == [("chat", ({"role": "user", "content": "plain"},), None)]
    assert _sent(query, prompt="Answer: {query}") == [("chat", ({"role": "user", "content": "Answer: the transcript"},), None)]
    assert _sent(query, mode="completion") == [("completion", (), "the transcript")]
