"""Fixtures for the eval tests: the shared benchmark subsets, and a guard that no test downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT

# A data folder the environment names wins over the repository's neighbour (read before any test unsets it).
SHARED = Path(os.environ.get("ARCHON_DATA_DIR") or ROOT.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    """No test may reach the internet: downloads are off and would fail loudly if attempted."""
    monkeypatch.setenv("ARCHON_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ARCHON_DATA_DIR", raising=False)

    def no_download(spec):
        raise AssertionError(f"a test tried to download benchmark '{spec.name}'")

    monkeypatch.setattr("archon.evals.datasets._download", no_download)


@pytest.fixture
def data_dir(monkeypatch) -> Path:
    """ARCHON_DATA_DIR pointed at the shared benchmark subsets; the test skips when they are absent."""
    base = SHARED
    if not (base / "gsm8k_test_200.jsonl").is_file():
        pytest.skip(f"benchmark subsets not found in {base}")
    monkeypatch.setenv("ARCHON_DATA_DIR", str(base))
    return base
