"""``archon import-archon DIR`` over the original Archon's 292 config files (../shared/archon_configs,
or $ARCHON_CONFIGS_DIR): every valid one converts, validates and runs on a local server; the two broken
files are refused with their line and column. Skipped when the folder is absent."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archon import CompiledPipeline, Runtime
from archon.import_archon import convert_folder
from archon.testing.fake_server import FakeOpenAIServer
from backends.presets import OpenAISettings
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = Path(os.environ.get("ARCHON_CONFIGS_DIR") or ROOT.parent / "shared" / "archon_configs" / "configs")
BROKEN = {"archon-1-110bFuser-1-110bRanker3-8-70BM3S.json": "line 26, column 40",
          "archon-1-110bFuser-1-110bRanker5-8-70BM.json": "line 71, column 40"}
needs_configs = pytest.mark.skipif(not CONFIGS.is_dir(), reason=f"the original Archon configs are not at {CONFIGS}")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archon", *args], capture_output=True, text=True)


@needs_configs
def test_every_valid_config_converts_with_one_backend_and_the_broken_ones_name_line_and_column():
    results = convert_folder(CONFIGS, backend="vllm")
    assert len(results) == 292
    refused = {r.path.name: r.problems for r in results if r.spec is None}
    assert set(refused) == set(BROKEN), {k: v[0] for k, v in refused.items()}
    for name, where in BROKEN.items():
        assert where in refused[name][0] and "not valid JSON" in refused[name][0]
    assert sum(r.spec is not None for r in results) == 290


@needs_configs
def test_without_backend_only_types_with_no_endpoint_are_refused_and_say_pass_backend():
    results = convert_folder(CONFIGS)
    refused = [r for r in results if r.spec is None and r.path.name not in BROKEN]
    assert len(refused) == 4  # 3 PairRM rankers (model_type ""), 1 Bedrock generator
    assert all("pass --backend NAME" in r.problems[0] for r in refused)
    google = [r for r in results if r.spec and any(m.startswith("google/") for n in r.spec.nodes for m in n.config.model_refs())]
    assert len(google) >= 10  # Google_API -> the Gemini preset


@needs_configs
def test_folder_cli_writes_yaml_that_validates_and_exits_2_for_the_broken_files(tmp_path):
    out = tmp_path / "out"
    r = run("import-archon", str(CONFIGS), "--backend", "vllm", "--out-dir", str(out))
    assert r.returncode == 2, r.stderr
    assert "converted 290" in r.stdout and "refused 2" in r.stdout and "Traceback" not in r.stderr
    assert "line 26, column 40" in r.stdout and "line 71, column 40" in r.stdout
    assert "'length_contorl' (misspelt) is ignored" in r.stdout  # the original ignored it too
    written = sorted(out.rglob("*.yaml"))
    assert len(written) == 290 and (out / "best_performing_configs" / "example.yaml").exists()
    r = run("validate", *map(str, written))
    assert r.returncode == 0, r.stderr[-2000:]


def test_folder_cli_exits_0_when_every_file_converts_and_refuses_flag_mixups(tmp_path):
    cfg = {"layers": [[{"type": "generator", "model": "m", "model_type": "OpenAI_API", "samples": 2}],
                      [{"type": "fuser", "model": "m", "model_type": "OpenAI_API"}]]}
    folder = tmp_path / "cfgs"
    (folder / "sub").mkdir(parents=True)
    write(folder, "a.json", json.dumps(cfg))
    write(folder / "sub", "b.json", json.dumps(cfg))
    r = run("import-archon", str(folder), "--out-dir", str(tmp_path / "o"))
    assert r.returncode == 0 and "converted 2" in r.stdout and "refused 0" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "o" / "sub" / "b.yaml").exists()
    r = run("import-archon", str(folder), "-o", str(tmp_path / "x.yaml"))
    assert r.returncode == 2 and "--out-dir" in r.stderr and "Traceback" not in r.stderr
    r = run("import-archon", str(tmp_path / "nothing-here"))
    assert r.returncode == 2 and "no such file or folder" in r.stderr


def reply(prompt: str, k: int, passing: bool = True) -> str:
    """Replies every component's prompt can read; ``passing``: every judged candidate passes every check."""
    if "Judgement:" in prompt:
        return "\n".join(f"{i}: {'PASS' if passing else 'FAIL'}" for i in range(1, 51))
    if "Requirements:" in prompt:
        return "1. Names the capital\n2. Is brief"
    if "Ranking:" in prompt:
        return "[2] > [1]"
    if "Reviews:" in prompt:
        return "[1]\nStrengths: ok\nWeaknesses: none"
    if "Reasoning:" in prompt:
        return "Looks right. Verdict: correct"
    return f"Canberra {k}"


@needs_configs
@pytest.mark.parametrize("part", range(4))
def test_every_converted_config_runs_on_a_local_server(part):
    """Every model of every config mapped to one OpenAI-compatible server on 127.0.0.1 (in four parts)."""
    results = [r for r in convert_folder(CONFIGS, backend="local-server") if r.spec is not None][part::4]

    async def go(url: str) -> list[str]:
        rt = Runtime({"local-server": OpenAISettings(base_url=url, api_key_env=None, max_concurrency=64)}, store=False)
        try:
            outs = []
            for r in results:
                assert r.spec is not None
                res = await CompiledPipeline(r.spec).run("Name the capital of Australia.", rt)
                outs.append(res.output)
            return outs
        finally:
            await rt.aclose()

    with FakeOpenAIServer(reply=reply) as srv:
        outputs = asyncio.run(go(srv.base_url))
    assert len(outputs) == len(results) and all(outputs)
