"""The example plug-in (examples/plugins/archon-example-plugin) works end to end once installed:
its operator, backend kind and scorer appear in ``archon schema`` and run through ``archon run``
and ``archon eval``, and it passes Archon's conformance suites. CI installs it; elsewhere these
tests skip: pip install -e examples/plugins/archon-example-plugin"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("archon_example_plugin", reason="pip install -e examples/plugins/archon-example-plugin")

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugins" / "archon-example-plugin"
EXAMPLE = PLUGIN / "example"


def archon(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "archon", *args], check=False, capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_schema_lists_the_plugin_operator_and_backend_kind():
    out = archon("schema")
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)
    text = json.dumps(schema)
    assert '"const": "shorten"' in text and "Shorten each candidate" in text
    assert '"const": "template"' in text and "max_prompt_chars" in text


def test_a_pipeline_using_the_plugin_runs(tmp_path):
    out = archon("run", str(EXAMPLE / "pipeline.yaml"), "--input", "Name the capital of France: Paris",
                 "--db", f"sqlite:///{tmp_path / 'a.db'}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Name the capital of France: Paris"


def test_eval_scores_with_the_plugin_scorer(tmp_path):
    out = archon("eval", str(EXAMPLE / "pipeline.yaml"), "--benchmark", str(EXAMPLE / "benchmark.yaml"),
                 "--db", f"sqlite:///{tmp_path / 'a.db'}", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["n"] == 3 and report["failed"] == 0
    assert report["score"] == pytest.approx(2 / 3)  # the third answer never names Mars


def test_unknown_settings_of_the_plugin_kind_are_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLE / "pipeline.yaml").read_text().replace("max_prompt_chars: 2000", "n_ctx: 2000"))
    out = archon("validate", str(bad))
    assert out.returncode == 2
    assert f"{bad}: backend 'canned': unknown setting 'n_ctx'" in out.stderr
    assert "Valid settings for kind template: " in out.stderr and "template, max_prompt_chars" in out.stderr


def test_the_plugin_passes_its_conformance_suites():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=PLUGIN,
                         check=False, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout
