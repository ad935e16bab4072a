"""How long Salt takes to render the formula's SLS for each role, without the lab.

    .venv/bin/python bench/render.py [--rounds N]

Each role's node (pg-01, haproxy-01, backup-01) on Debian 13, through the same loaders
the fast tier uses (tests/unit/helpers.py): `state.show_sls pgha`, which renders every
SLS file the node gets and, through them, map.jinja. Prints the median of N rounds after
a first, warm-up one. State execution and file templates are not part of it."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from unit.helpers import Minion, lab_pillar  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'node':12} {'states':>6} {'median s':>9}  rounds")
    for node in ("pg-01", "haproxy-01", "backup-01"):
        minion = Minion(Path(tempfile.mkdtemp(prefix="pgha-render-")), node, "Debian-13")
        minion.use({"pgha": lab_pillar()})
        high = minion.render("pgha")
        times = []
        for _ in range(args.rounds):
            minion.loaders.context.clear()  # each state run starts with an empty __context__
            start = time.perf_counter()
            minion.render("pgha")
            times.append(time.perf_counter() - start)
        print(f"{node:12} {len(high):6d} {statistics.median(times):9.2f}  "
              + ", ".join(f"{t:.2f}" for t in times))


if __name__ == "__main__":
    main()
