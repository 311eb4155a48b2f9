"""Mutated pipeline and benchmark files, and the CLI run in-process with its time and memory measured.

Shared by the fuzz tests (tests/archon/test_fuzz_validate.py, tests/evals/test_fuzz_benchmarks.py)
and bench/fuzz_inputs.py, which prints the counts. Every corpus is generated from a fixed seed, so a
failure names a file that the next run makes again.

Pipelines are rewritten to call one backend, ``dead``, on a closed port of 127.0.0.1: a run that
gets past validation can then only fail as a model call fails (exit 1), never by reaching anyone.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import resource
import socket
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A port nothing listens on (bound, then released: the kernel will not hand it out at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    seconds: float
    #: With ``trace_memory``: the most bytes Python held at once during the command; else 0.
    peak_bytes: int = 0


def max_rss() -> int:
    """This process's peak resident memory so far, in bytes (a high-water mark: it never falls)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cli(*args: str, trace_memory: bool = False) -> Outcome:
    """``archon ARGS`` in this process: exit code, output, wall time and (optionally) peak memory.

    tracemalloc slows allocation-heavy commands two to three times, so the fuzz loops leave it off
    and bound memory by the process's peak RSS instead (see Report).
    """
    from archon.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["archon", *args]
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        seconds = time.perf_counter() - started
        peak = 0
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        sys.argv = argv
    return Outcome(code, out.getvalue(), err.getvalue(), seconds, peak)


# ---- pipelines ---------------------------------------------------------------------------------

_EXTRA_SEEDS = [
    {"nodes": [{"id": "draft", "op": "generate", "model": "m", "samples": 3},
               {"id": "vote", "op": "vote", "inputs": ["draft"], "extractor": "regex", "pattern": "Answer: (.+)"}]},
    {"nodes": [{"id": "a", "op": "generate", "model": "m"},
               {"id": "c", "op": "critique", "inputs": ["a"], "model": "m"},
               {"id": "f", "op": "fuse", "inputs": ["a", "c"], "model": "m"}], "output": "f"},
    {"nodes": [{"id": "easy", "op": "generate", "model": "m", "inputs": ["r"]},
               {"id": "hard", "op": "generate", "model": "m", "inputs": ["r"], "samples": 4},
               {"id": "r", "op": "route", "model": "m", "thresholds": [0.5], "branches": ["hard", "easy"]},
               {"id": "out", "op": "vote", "inputs": ["easy", "hard"], "extractor": "text"}], "output": "out"},
    {"nodes": [{"id": "g", "op": "generate", "model": ["m1", "m2"], "samples": 2},
               {"id": "v", "op": "verify", "inputs": ["g"], "model": "m"}]},
]
_RESERVED_IDS = ["__start__", "__end__", "__pregel_pull", "__input__", "__interrupt__", "configurable",
                 "checkpoint_ns", "a:b", "a|b", "x\ny", "tab\there", "__x"]
_BAD_URLS = ["http://[::1", "http://" + "a" * 70_000 + "/v1", "http://x\ud800/v1", "ftp://127.0.0.1/v1",
             "127.0.0.1:8000/v1", "http:///v1", "http://h:99999/v1", "http://a b/v1", "", "http://\x00/",
             "${NO_SUCH_ARCHON_VAR}", "https://☃.net/v1", "http://%zz/v1", "http://h:-1/"]
_BAD_REGEXES = ["(", "[", "a{2,1}", "(?P<x", "*", "\\", "(?<=a+)b"]
_ODD_VALUES: list[Any] = [None, "", "x", -1, 0, 10**30, -10**9, 1e308, float("nan"), True, [], {}, [1, [2]], {"a": 1}]


def _with_dead_backend(data: dict, url: str) -> dict:
    data = json.loads(json.dumps(data))
    # Retries first: a truncated file that keeps the URL keeps "no retries" too (no backoff waits).
    data["backends"] = {"dead": {"max_retries": 0, "timeout": 2, "base_url": url}}
    for node in data.get("nodes", []):
        model = node.get("model")
        if isinstance(model, str):
            node["model"] = "dead/" + model.split("/", 1)[-1]
        elif isinstance(model, list):
            node["model"] = ["dead/" + str(m).split("/", 1)[-1] for m in model]
    return data


def pipeline_seeds(url: str) -> list[dict]:
    seeds = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "examples").glob("*.yaml"))]
    return [_with_dead_backend(s, url) for s in seeds + _EXTRA_SEEDS]


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


def _mutate_data(rng: random.Random, data: dict) -> tuple[str, dict]:
    nodes = data["nodes"]
    node = rng.choice(nodes)
    if not isinstance(node, dict):
        raise TypeError("no node to mutate")
    # Retries and their waits stay as seeded: a run must fail at once on the closed port.
    fixed = {"max_retries", "max_retry_wait"}
    kind = rng.choice(["drop", "rename", "retype", "number", "reserved_id", "bad_url", "bad_regex", "no_base_url",
                       "unknown_backend", "duplicate_id", "cycle", "output", "top_retype", "backend_field"])
    if kind == "drop":
        target = rng.choice([data, node])
        if target:
            target.pop(rng.choice(list(target)), None)
    elif kind == "rename":
        key = rng.choice(list(node))
        node[key[:-1] + "x" if key else "x"] = node.pop(key)
    elif kind in ("retype", "number"):
        key = rng.choice([k for k in node if k not in ("id",)] or ["samples"])
        pool = _ODD_VALUES if kind == "retype" else [-1, 0, 10**30, 2**63, -10**9, 1e308, 0.5, 10**6]
        node[key] = rng.choice(pool)
    elif kind == "reserved_id":
        old, node["id"] = node["id"], rng.choice(_RESERVED_IDS)
        if data.get("output") == old:
            data["output"] = node["id"]
    elif kind == "bad_url":
        data["backends"]["dead"]["base_url"] = rng.choice(_BAD_URLS)
    elif kind == "bad_regex":
        nodes.append({"id": "vote_x", "op": "vote", "inputs": [nodes[-1]["id"]], "extractor": "regex",
                      "pattern": rng.choice(_BAD_REGEXES)})
        data["output"] = "vote_x"
    elif kind == "no_base_url":
        data["backends"]["dead"].pop("base_url")
    elif kind == "unknown_backend":
        node["model"] = "nowhere/m"
    elif kind == "duplicate_id":
        nodes.append(dict(node))
    elif kind == "cycle":
        node["inputs"] = [nodes[-1]["id"]]
        nodes[-1]["inputs"] = [node["id"]]
    elif kind == "output":
        data["output"] = rng.choice(["nope", 3, None, ["a"]])
    elif kind == "top_retype":
        data[rng.choice(["nodes", "backends", "name", "output", "description"])] = rng.choice(_ODD_VALUES)
    elif kind == "backend_field":
        key = rng.choice([k for k in ("kind", "max_concurrency", "timeout", "n_ctx", "api_key_env", "n_threads") if k not in fixed])
        data["backends"]["dead"][key] = rng.choice(_ODD_VALUES + ["local", "nope", ["A", "B"]])
    return kind, data


def _mutate_bytes(rng: random.Random, text: bytes) -> tuple[str, bytes]:
    kind = rng.choice(["truncate", "empty", "binary", "utf16", "latin1", "nul", "deep", "bomb", "recursive",
                       "surrogate", "bom", "bigint", "date", "tabs", "huge_string", "deep_flow"])
    if kind == "truncate":
        return kind, text[: rng.randrange(len(text))]
    if kind == "empty":
        return kind, b""
    if kind == "binary":
        return kind, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
    if kind == "utf16":
        return kind, text.decode().encode(rng.choice(["utf-16", "utf-16-le"]))
    if kind == "latin1":
        return kind, text + "\ndescription: café\n".encode("latin-1")
    if kind == "nul":
        cut = rng.randrange(len(text))
        return kind, text[:cut] + b"\x00" + text[cut:]
    if kind == "deep":
        n = rng.choice([70, 500, 5000, 50_000])
        return kind, text + b"description: " + b"[" * n + b"]" * n + b"\n"
    if kind == "deep_flow":
        n = rng.choice([100, 3000])
        return kind, text + b"description:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, n))
    if kind == "bomb":
        lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        for i in range(1, 10):
            lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
        return kind, ("\n".join(lines) + "\n").encode() + text
    if kind == "recursive":
        return kind, text + b"description: &r [*r]\n"
    if kind == "surrogate":
        return kind, text + b'description: "\\ud800 lone"\n'
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + text
    if kind == "bigint":
        return kind, text.replace(b"output:", b"name: " + b"9" * 5000 + b"\noutput:", 1) + b"\ndescription: " + b"9" * 5000 + b"\n"
    if kind == "date":
        return kind, text + b"description: 2024-13-45\n"
    if kind == "tabs":
        return kind, text.replace(b"  ", b"\t", 3)
    return kind, text + b"description: " + b"x" * 2_000_000 + b"\n"


def pipeline_corpus(url: str, count: int = 320, seed: int = 11) -> list[tuple[str, bytes]]:
    """``count`` (mutation name, file bytes) pairs: the seeds, data mutations, then byte mutations."""
    rng = random.Random(seed)
    seeds = pipeline_seeds(url)
    out = [("seed", _dump(s)) for s in seeds]
    while len(out) < count:
        base = json.loads(json.dumps(rng.choice(seeds)))
        if rng.random() < 0.6:
            kind, data = _mutate_data(rng, base)
            if rng.random() < 0.3:  # a second fault: reported together, or the first one masks it
                try:
                    kind2, data = _mutate_data(rng, json.loads(json.dumps(data)))
                    kind = f"{kind}+{kind2}"
                except (KeyError, TypeError, IndexError, AttributeError, ValueError):
                    pass  # the first fault left no node or backend to change
            out.append((kind, _dump(data)))
        else:
            out.append(_mutate_bytes(rng, _dump(base)))
    return out


# ---- benchmarks --------------------------------------------------------------------------------

_RECORDS = [{"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)} for i in range(4)]


def _mutate_record(rng: random.Random, rec: dict) -> str:
    kind = rng.choice(["null_answer", "drop", "retype", "surrogate", "rename", "id_null", "big"])
    if kind == "null_answer":
        rec["answer"] = None
    elif kind == "drop":
        rec.pop(rng.choice(list(rec)))
    elif kind == "retype":
        rec[rng.choice(list(rec))] = rng.choice(_ODD_VALUES)
    elif kind == "surrogate":
        rec[rng.choice(["question", "answer", "id"])] = "\ud800"
    elif kind == "rename":
        key = rng.choice(list(rec))
        rec[key + "_"] = rec.pop(key)
    elif kind == "id_null":
        rec["id"] = None
    else:
        rec["question"] = "x" * 100_000
    return kind


def benchmark_corpus(tmp: Path, count: int = 120, seed: int = 12) -> list[tuple[str, Path]]:
    """``count`` (mutation name, path) benchmark files under ``tmp``: JSONL files and YAML descriptions."""
    rng = random.Random(seed)
    out: list[tuple[str, Path]] = []
    for i in range(count):
        records = json.loads(json.dumps(_RECORDS))
        roll = rng.random()
        if roll < 0.45:
            kind = _mutate_record(rng, rng.choice(records))
            body = "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in records).encode()
        elif roll < 0.75:
            body = "".join(json.dumps(r) + "\n" for r in records).encode()
            kind, change = rng.choice([
                ("truncate", lambda b: b[: rng.randrange(len(b))]),
                ("binary", lambda b: bytes(rng.randrange(256) for _ in range(300))),
                ("utf16", lambda b: b.decode().encode("utf-16")),
                ("latin1", lambda b: b + '{"question": "café", "answer": "1"}\n'.encode("latin-1")),
                ("deep", lambda b: b + b'{"question": "q", "answer": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"),
                ("bigint", lambda b: b + b'{"question": "q", "answer": ' + b"9" * 5000 + b"}\n"),
                ("array", lambda b: b + b"[1, 2]\n"),
                ("blank", lambda b: b"\n\n  \n"),
                ("empty", lambda b: b""),
                ("bom", lambda b: b"\xef\xbb\xbf" + b),
                ("duplicate_id", lambda b: b + b.splitlines(keepends=True)[0]),
            ])
            body = change(body)
        else:
            data = tmp / f"data{i}.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in records))
            desc: dict[str, Any] = {"name": f"b{i}", "data": data.name, "scorer": "exact"}
            kind = rng.choice(["desc_ok", "desc_bad_data", "desc_unknown", "desc_visible", "desc_prompt", "desc_bomb",
                               "desc_scorer", "desc_limit"])
            if kind == "desc_bad_data":
                desc["data"] = rng.choice(["nope.jsonl", 3, None, "../../../../etc/passwd"])
            elif kind == "desc_unknown":
                desc["colour"] = "red"
            elif kind == "desc_visible":
                desc["visible"] = rng.choice([["answer"], ["nope"], "id", [None]])
            elif kind == "desc_prompt":
                desc["prompt"] = rng.choice(["{answer}", "{input", "{}", "{0}", "{input.__class__}"])
            elif kind == "desc_scorer":
                desc["scorer"] = rng.choice(["nope", 3, "judge"])
            elif kind == "desc_limit":
                desc["limit"] = rng.choice([-1, 0, 10**30, "x"])
            text = _dump(desc)
            if kind == "desc_bomb":
                text = (b"a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
                        + b"".join(f"a{j}: &a{j} [{', '.join([f'*a{j - 1}'] * 9)}]\n".encode() for j in range(1, 10)) + text)
            path = tmp / f"bench{i}.yaml"
            path.write_bytes(text)
            out.append((kind, path))
            continue
        path = tmp / f"bench{i}.jsonl"
        path.write_bytes(body)
        out.append((kind, path))
    return out


# ---- the checks --------------------------------------------------------------------------------

LIMIT_SECONDS = 2.0
LIMIT_BYTES = 200 * 2**20


@dataclass
class Report:
    """Exit codes per command, the slowest command, the memory growth, and every broken rule.

    Memory: the peak RSS is a high-water mark, so if it grew less than LIMIT_BYTES over the whole
    loop, no single command took more than that above the starting point.
    """

    files: int = 0
    codes: Counter = field(default_factory=Counter)
    max_seconds: float = 0.0
    baseline: int = field(default_factory=max_rss)
    violations: list[str] = field(default_factory=list)

    @property
    def max_bytes(self) -> int:
        return max_rss() - self.baseline

    def note(self, command: str, name: str, outcome: Outcome, allowed: tuple[int, ...]) -> None:
        self.codes[(command, outcome.code)] += 1
        self.max_seconds = max(self.max_seconds, outcome.seconds)
        text = outcome.out + outcome.err
        problems = []
        if outcome.code not in allowed:
            problems.append(f"exit {outcome.code} (allowed: {allowed})")
        if "Traceback" in text or "error: unexpected " in text:  # the CLI's catch-all (a YAML message may say "unexpected")
            problems.append("a traceback or an unexpected error")
        if outcome.seconds > LIMIT_SECONDS:
            problems.append(f"{outcome.seconds:.2f} s")
        if self.max_bytes > LIMIT_BYTES:
            problems.append(f"peak memory {self.max_bytes / 2**20:.0f} MB over the start")
        if problems:
            self.violations.append(f"{name} ({command}): {'; '.join(problems)}: {outcome.err[-300:]!r}")

    def summary(self) -> str:
        by_command: dict[str, list[str]] = {}
        for (command, code), n in sorted(self.codes.items()):
            by_command.setdefault(command, []).append(f"exit {code}: {n}")
        parts = [f"{command} ({', '.join(counts)})" for command, counts in by_command.items()]
        return (f"{self.files} files; {'; '.join(parts)}; slowest {self.max_seconds:.2f} s, "
                f"peak memory +{self.max_bytes / 2**20:.1f} MB")


def fuzz_pipelines(tmp: Path, count: int = 320) -> Report:
    """``archon validate`` then ``archon run`` on every mutated pipeline. validate exits 0 or 2; run
    refuses (2) what validate refused, and may fail (1) only as the closed port fails a model call."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    corpus = pipeline_corpus(url, count)
    warm = tmp / "warm.yaml"
    warm.write_bytes(corpus[0][1])
    cli("validate", str(warm)), cli("run", str(warm), "--input", "2+2?")  # imports, outside the timings
    report = Report(files=len(corpus))
    for i, (kind, body) in enumerate(corpus):
        path = tmp / f"p{i:03d}-{kind}.yaml"
        path.write_bytes(body)
        checked = cli("validate", str(path))
        report.note("validate", path.name, checked, (0, 2))
        ran = cli("run", str(path), "--input", "What is 2+2?")
        allowed: tuple[int, ...] = (2,)  # what validate refuses, run refuses too
        if checked.code == 0:  # a valid file may still name API-key variables this environment lacks (exit 2, named)
            allowed = (0, 1, 2) if "needs an API key: set the" in ran.err else (0, 1)
        report.note("run", path.name, ran, allowed)
    return report


PIPELINE_WITHOUT_MODELS = "nodes:\n  - {id: v, op: vote, extractor: text}\n"


def fuzz_benchmarks(tmp: Path, count: int = 120) -> Report:
    """``archon eval`` of a pipeline that calls no model on every mutated benchmark: 0, 1 or 2."""
    pipeline = tmp / "vote.yaml"
    pipeline.write_text(PIPELINE_WITHOUT_MODELS)
    corpus = benchmark_corpus(tmp, count)
    cli("eval", str(pipeline), "--benchmark", str(corpus[0][1]), "--json")  # imports, outside the timings
    report = Report(files=len(corpus))
    for kind, path in corpus:
        report.note("eval", f"{path.name} ({kind})", cli("eval", str(pipeline), "--benchmark", str(path), "--json"), (0, 1, 2))
    return report
