"""Shared fixtures. No test reaches the internet: the OpenAI presets' keys are unset here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# A test that forgot to fake a backend must fail, never spend money.
for _var in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
    os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    """Every test gets its own default database, never ./archon.db."""
    monkeypatch.setenv("ARCHON_DB_URL", f"sqlite:///{tmp_path / 'archon.db'}")
    yield


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p
