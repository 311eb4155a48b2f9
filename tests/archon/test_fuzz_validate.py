"""Issue 11: over 300 mutated pipeline files, ``archon validate`` exits 0 or 2 and ``archon run``
fails only as a model call fails (exit 1, on a closed port) on what validate accepted; never a
traceback, each command under 2 s and 200 MB. The corpus and the rules are in fuzz_corpus.py."""

from __future__ import annotations

from tests.archon.fuzz_corpus import fuzz_pipelines


def test_mutated_pipelines_get_exit_0_1_or_2_and_never_a_traceback(tmp_path, capsys):
    report = fuzz_pipelines(tmp_path, count=320)
    with capsys.disabled():
        print(f"\npipeline fuzz: {report.summary()}")
    assert not report.violations, "\n".join(report.violations[:20])
    assert report.files >= 300
    # The corpus keeps some valid files, so run's side of the rule is exercised too.
    assert report.codes[("validate", 0)] >= 20
