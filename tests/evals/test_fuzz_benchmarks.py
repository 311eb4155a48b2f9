"""Issue 11: over 100 mutated benchmark files (JSONL and YAML descriptions) given to ``archon eval``
end with exit 0, 1 or 2, never a traceback, each under 2 s and 200 MB."""

from __future__ import annotations

from tests.archon.fuzz_corpus import fuzz_benchmarks


def test_mutated_benchmarks_get_exit_0_1_or_2_and_never_a_traceback(tmp_path, capsys):
    report = fuzz_benchmarks(tmp_path, count=120)
    with capsys.disabled():
        print(f"\nbenchmark fuzz: {report.summary()}")
    assert not report.violations, "\n".join(report.violations[:20])
    # The pipeline calls no model and outputs nothing, so a readable benchmark ends in exit 1.
    assert report.files >= 100 and report.codes[("eval", 2)] and report.codes[("eval", 1)]
