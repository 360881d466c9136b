"""Offline extraction benchmark (issue 16): the heuristic extractor's time per scenario
text (goal: p50 <= 5 ms), against a raw baseline in the same run, and what loading it
costs.

Texts: the 64 labeled scenario texts shipped in src/ccvault/extraction/datasets (dev and
test), each one a "scenario". Timed interleaved (CCV_BENCH_OFFLINE_ROUNDS rounds over all
texts, default 20, after 2 untimed), one sample per text per round:

- `raw keyword scan`: what any keyword extractor does at least: lower-case the text and
  search it once with each vocabulary pattern (the old extractor's core);
- `heuristic extract`: `HeuristicExtractor.extract` (sentences, object lists, conditions,
  bounds, documents, vocabulary, merge);
- `extract + plan`: the same and `plan()`, i.e. everything a run does but the database.

Then, in a fresh interpreter each: the import time and the resident-memory growth of
`import ccvault.extraction.heuristic` (what a tagger or lemmatizer would add to: none is
used, the rules are the standard library's `re`).

Run: `python benchmarks/extraction_offline_bench.py`. Output:
CCV_BENCH_OFFLINE_OUTPUT (benchmarks/results/extraction_offline.json).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccvault.extraction.evaluate import DATASETS, load_cases
from ccvault.extraction.heuristic import HeuristicExtractor, _vocabulary
from ccvault.extraction.models import SourceKind, SourceText, TextPart
from ccvault.extraction.plan import plan
from harness import measure_interleaved

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = Path(
    os.environ.get("CCV_BENCH_OFFLINE_OUTPUT", ROOT / "benchmarks/results/extraction_offline.json")
)
ROUNDS = int(os.environ.get("CCV_BENCH_OFFLINE_ROUNDS", "20"))
TARGET_P50_MS = 5.0
# Current RSS from /proc (ru_maxrss is inherited across fork+exec on Linux, so a child of
# a big parent would show no growth).
IMPORT_PROBE = """
import time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss()
start = time.perf_counter()
import ccvault.extraction.heuristic
took = time.perf_counter() - start
print(took, (rss() - before) / 1024)
"""


async def bench() -> dict[str, Any]:
    """Time the three operations over every text."""
    texts = [c.text for split in ("dev", "test") for c in load_cases(DATASETS / f"{split}.jsonl")]
    sources = [SourceText(SourceKind.scenario, "bench", [TextPart(t)]) for t in texts]
    extractor = HeuristicExtractor()
    cursor = {"raw": 0, "extract": 0, "plan": 0}

    def following(name: str) -> int:
        index = cursor[name] % len(texts)
        cursor[name] += 1
        return index

    async def raw() -> None:
        text = texts[following("raw")].lower()
        for _, pattern in _vocabulary():
            pattern.search(text)

    async def extract() -> None:
        await extractor.extract(sources[following("extract")], [])

    async def extract_and_plan() -> None:
        plan(await extractor.extract(sources[following("plan")], []), [], [])

    stats = await measure_interleaved(
        {"raw keyword scan": raw, "heuristic extract": extract, "extract + plan": extract_and_plan},
        iterations=ROUNDS * len(texts),
        warmup=2 * len(texts),
    )
    results = {
        name: {"p50_ms": s.p50_us / 1000, "p99_ms": s.p99_us / 1000, "max_ms": s.max_us / 1000}
        for name, s in stats.items()
    }
    raw_p50 = results["raw keyword scan"]["p50_ms"]
    return {
        "texts": len(texts),
        "results": results,
        "ratio_to_raw_p50": round(results["heuristic extract"]["p50_ms"] / raw_p50, 1),
        "target": {
            "goal": "offline extraction p50 <= 5 ms per scenario",
            "p50_ms": results["heuristic extract"]["p50_ms"],
            "passed": results["heuristic extract"]["p50_ms"] <= TARGET_P50_MS,
        },
    }


def import_cost() -> dict[str, float]:
    """Median import time and peak-RSS growth of the extractor, each in a fresh process."""
    probes = [
        subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(5)
    ]
    seconds = sorted(float(p[0]) for p in probes)
    memory = sorted(float(p[1]) for p in probes)
    return {
        "median_ms": round(seconds[len(seconds) // 2] * 1000, 1),
        "median_rss_growth_mib": round(memory[len(memory) // 2], 1),
    }


def main() -> int:
    """Measure, write the JSON, print a table."""
    data = asyncio.run(bench())
    data["import"] = import_cost()
    data["environment"] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "rounds": ROUNDS,
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{'operation':<20} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, row in data["results"].items():
        print(f"{name:<20} {row['p50_ms']:>9.3f} {row['p99_ms']:>9.3f} {row['max_ms']:>9.3f}")
    print(f"heuristic / raw (p50): {data['ratio_to_raw_p50']}x")
    print(
        f"import ccvault.extraction.heuristic: {data['import']['median_ms']} ms, "
        f"+{data['import']['median_rss_growth_mib']} MiB RSS"
    )
    verdict = "ok" if data["target"]["passed"] else "MISS"
    print(f"goal p50 <= 5 ms per scenario: {data['target']['p50_ms']:.3f} ms {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
