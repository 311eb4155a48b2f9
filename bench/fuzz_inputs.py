"""Bad input, measured: exit codes of ``archon validate``/``run`` on 320 mutated pipelines and of
``archon eval`` on 120 mutated benchmarks, the slowest command and the memory growth (issue 11).

The corpora and the rules are the fuzz tests' (tests/archon/fuzz_corpus.py); this prints the figures.

    python bench/fuzz_inputs.py [--out bench/results/fuzz_inputs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.archon.fuzz_corpus import fuzz_benchmarks, fuzz_pipelines  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/fuzz_inputs.json")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ARCHON_DB_URL"] = f"sqlite:///{tmp}/archon.db"  # never ./archon.db
        for name, fuzz in (("pipelines", fuzz_pipelines), ("benchmarks", fuzz_benchmarks)):
            folder = Path(tmp) / name
            folder.mkdir()
            report = fuzz(folder)
            print(f"{name}: {report.summary()}")
            for line in report.violations:
                print(f"  {line}")
            results[name] = {"files": report.files, "violations": len(report.violations),
                             "codes": {f"{c} {code}": n for (c, code), n in sorted(report.codes.items())},
                             "max_seconds": round(report.max_seconds, 3), "peak_mb": round(report.max_bytes / 2**20, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
