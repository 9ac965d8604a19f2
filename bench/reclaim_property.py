"""The reclamation property (tests/test_reclaim_property.py) with many more examples.

The gate runs a dozen derandomized examples; this runs hundreds from a fresh random seed
(printed, so a failure can be replayed with --seed) against the same simulated API server
and a real database (DATABASE_URL, else SQLite, as the tests use).

Usage: .venv/bin/python bench/reclaim_property.py [--examples 300] [--seed N] [--quick] [--json]

The metric that must hold: 0 violations of "no address listed by a live pod is ever freed"
(nor of "every item ends, the run ends"); the time per example is shown for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TEST = "tests/test_reclaim_property.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    parser.add_argument("--quick", action="store_true", help="60 examples")
    parser.add_argument("--json", action="store_true", help="a JSON line at the end")
    args = parser.parse_args()
    examples = 60 if args.quick else args.examples
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    env = {
        **os.environ,
        "RECLAIM_PROPERTY_EXAMPLES": str(examples),
        "RECLAIM_PROPERTY_SEED": str(seed),
    }
    started = time.perf_counter()
    result = subprocess.run(
        [common.PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
        env=env,
        cwd=common.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    passed = result.returncode == 0
    if not passed:
        print(result.stdout[-6000:])
        print(result.stderr[-2000:], file=sys.stderr)
    metrics = [
        common.metric(
            "violations of the reclaim invariant",
            0.0 if passed else 1.0,
            "",
            0.0,
            note=f"{examples} examples, seed {seed}",
        ),
        common.metric("time per example", seconds / examples * 1000, "ms"),
    ]
    print(f"reclaim property: {examples} examples, seed {seed}, {seconds:.1f} s")
    print(
        common.table(
            ["metric", "measured", "target", "result"], common.metric_rows(metrics), right={1}
        )
    )
    if not passed:
        print(
            f"replay: .venv/bin/python bench/reclaim_property.py --examples {examples} --seed {seed}"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "bench": "reclaim_property",
                    "context": f"{examples} examples, seed {seed}",
                    "metrics": metrics,
                }
            )
        )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
