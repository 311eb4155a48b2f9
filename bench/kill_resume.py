"""SIGKILL ``archon eval`` at random moments, resume it, and count the calls paid twice.

For each database (SQLite, PostgreSQL) and each kill: a fresh database and a fresh OpenAI-compatible
server on 127.0.0.1 (0.2 s per call), ``archon eval`` of generate(4) -> fuse over 40 items killed
with SIGKILL at a random moment once requests flow, then the same command run to the end. From the
server's own log: requests answered more than ``--margin`` ms before the kill that the resumed run
sent again (should be 0), and runs left ``running`` (should be 0).

    python bench/kill_resume.py [--kills 10] [--margin 100] [--seed 0] [--out bench/results/kill_resume.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archon.testing.fake_server import FakeOpenAIServer  # noqa: E402
from stores.testing import postgres_unavailable, temporary_database  # noqa: E402

PIPELINE = """
name: kill-resume
backends:
  srv: {{kind: openai, base_url: "{url}", max_concurrency: 32}}
nodes:
  - id: draft
    op: generate
    model: srv/m
    samples: 4
    temperature: 0.8
    max_tokens: 8
  - id: answer
    op: fuse
    inputs: [draft]
    model: srv/m
    max_tokens: 8
"""


def _key(entry) -> str:
    """A request without its sample count: a re-sent call asks the same thing, perhaps for fewer samples."""
    body = {k: v for k, v in (entry.body or {}).items() if k != "n"}
    return json.dumps([entry.path, body], sort_keys=True)


def _archon(args: list[str], db: str) -> list[str]:
    return [sys.executable, "-m", "archon", *args, "--db", db]


def one_kill(kind: str, rng: random.Random, margin_s: float, workdir: Path, items: int = 40) -> dict:
    data = workdir / "items.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": "0"}) + "\n"
                            for i in range(items)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with FakeOpenAIServer(reply=lambda p, k: f"The answer is {len(p) % 7}.", delay=0.2) as server, \
            temporary_database(kind) as db:
        pipeline = workdir / "p.yaml"
        pipeline.write_text(PIPELINE.format(url=server.base_url))
        cmd = _archon(["eval", str(pipeline), "--benchmark", str(data), "--concurrency", "8", "--json"], db)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while server.requests == 0 and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.1, 2.5))
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        before = list(server.log)
        answered = {_key(e) for e in before if e.end < killed_at - margin_s}
        late = {_key(e) for e in before if killed_at - margin_s <= e.end < killed_at} - answered
        resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        after = server.log[len(before):]
        resent = [e for e in after if _key(e) in answered]
        resent_late = [e for e in after if _key(e) in late]
        runs = json.loads(subprocess.run(_archon(["runs", "--json", "--limit", "100000"], db), env=env,
                                         capture_output=True, text=True, timeout=120).stdout or "[]")
        summary = json.loads(resumed.stdout) if resumed.returncode == 0 else {}
        return {"db": kind, "answered_before_kill": len(answered), "answered_within_margin": len(late), "resent_within_margin": len(resent_late),
                "resent_after_resume": len(resent),
                "resent_ages_ms": sorted(round((killed_at - e.end) * 1000) for e in before if _key(e) in {_key(r) for r in resent}), "requests_after_resume": len(after),
                "runs_left_running": sum(r["status"] == "running" for r in runs),
                "resume_exit": resumed.returncode, "items_scored": summary.get("n"), "items_failed": summary.get("failed")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--margin", type=float, default=100.0, help="ms: a reply this close to the kill may be lost")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], help="which databases to try")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "kill_resume.json"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = [k for k in ["sqlite"] + ([] if postgres_unavailable() else ["postgresql"]) if k in args.db]
    rows = []
    for kind in kinds:
        for _ in range(args.kills):
            with tempfile.TemporaryDirectory() as tmp:
                row = one_kill(kind, rng, args.margin / 1000, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    totals = {kind: {k: sum(r[k] for r in rows if r["db"] == kind)
                     for k in ("answered_before_kill", "resent_after_resume", "answered_within_margin",
                               "resent_within_margin", "runs_left_running")} for kind in kinds}
    print(json.dumps({"totals": totals, "margin_ms": args.margin}, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "totals": totals, "margin_ms": args.margin}, indent=2) + "\n")


if __name__ == "__main__":
    main()
