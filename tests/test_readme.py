"""Every ```python block of README.md runs as written, from the repository's root.

The blocks use the embedded model; here every runtime answers the ``local`` and ``openai`` backends
with a test double instead (``doubles`` below), so the whole file runs in seconds, offline and for free.
Backends a block gives itself (``backends={...}``) are kept: the double only fills in the rest. The
block that talks to ``archon serve`` with the ``openai`` client gets, in place of the server on port
8000, the same app serving the quick-start pipeline on a free port (``serving``).
"""

from __future__ import annotations

import re

import pytest

from archon.context import Runtime
from backends.doubles import FunctionBackend
from tests.conftest import ROOT
from tests.serve.conftest import live

README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def _answer(request, k: int) -> str:
    """A function body for code prompts (the starter tasks), a ranking for rankers, text for the rest."""
    text = request.prompt_text()
    if "Ranking" in text or "rank" in text.lower().split():
        return "[1] > [2]"
    return "    return None\n" if "def " in text else f"answer {k}"


@pytest.fixture
def doubles(monkeypatch):
    """Runtimes made while the test runs get the double for ``local`` and ``openai``; cwd is the repository."""
    fake = FunctionBackend(_answer)
    made = Runtime.__init__

    def init(self, specs=None, *, backends=None, **kw):
        made(self, specs, backends={"local": fake, "openai": fake, **(backends or {})}, **kw)

    monkeypatch.setattr(Runtime, "__init__", init)
    monkeypatch.chdir(ROOT)
    return fake


def test_the_readme_shows_run_eval_and_search_in_python():
    code = "\n".join(_blocks())
    for call in ("archon.run(", "archon.evaluate(", "archon.compare(", "archon.search(", "async with archon.Runtime("):
        assert call in code, call


@pytest.fixture
def serving(doubles, monkeypatch):
    """``openai.OpenAI(base_url=...)`` reaches the quick-start pipeline served in this process on a free port."""
    import openai

    from archon.serve import create_app
    from archon.spec import load_pipeline

    app = create_app({"quickstart": load_pipeline(ROOT / "examples" / "quickstart.yaml")}, lambda: Runtime(), api_keys=None)
    with live(app) as srv:
        client = openai.OpenAI
        monkeypatch.setattr(openai, "OpenAI", lambda *a, base_url=None, **kw: client(*a, base_url=srv.url, **kw))
        yield srv


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_python_block_runs(index, request, doubles, capsys):
    code = _blocks()[index]
    if "OpenAI(" in code:
        request.getfixturevalue("serving")
    exec(compile(code, f"README.md, python block {index + 1}", "exec"), {"__name__": "__main__"})  # noqa: S102
    if "print(" in code:
        assert capsys.readouterr().out.strip(), "the block printed nothing"
    # A block that only defines something (a search-space function) or brings its own double calls no model here.
    if not any(mark in code for mark in ("FunctionBackend(", "def space(trial)")):
        assert doubles.requests, "the block called no model: the double was not used"
