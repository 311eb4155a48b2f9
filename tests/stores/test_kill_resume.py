"""SIGKILL during ``archon eval`` and resume: no call the server answered before the kill is paid
again, and no run stays ``running`` (bench/kill_resume.py does the same at ten random moments)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from tests.stores.conftest import _postgres_skip_reason

_spec = importlib.util.spec_from_file_location("kill_resume", Path(__file__).resolve().parents[2] / "bench" / "kill_resume.py")
kill_resume = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kill_resume)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_killed_eval_resumes_without_paying_twice(kind, tmp_path):
    if kind == "postgresql" and (reason := _postgres_skip_reason()):
        pytest.skip(reason)
    rng = random.Random(7)
    for i in range(2):
        work = tmp_path / str(i)
        work.mkdir()
        row = kill_resume.one_kill(kind, rng, 0.1, work, items=24)
        assert row["answered_before_kill"] > 0, row  # the kill came once requests were being answered
        assert row["resent_after_resume"] == 0, row
        assert row["runs_left_running"] == 0, row
        assert (row["resume_exit"], row["items_scored"], row["items_failed"]) == (0, 24, 0), row
