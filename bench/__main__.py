"""`python -m bench [all|e2e|ingest|scale] [--rows N] [--repeat K] [--json]`: run the benchmarks and print their figures.

Each suite's figures are printed as soon as it ends (with --json, one object at the end), so that a later suite's
failure loses nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource

from bench import e2e, ingest, scale


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("suite", nargs="?", default="all", choices=["all", "e2e", "ingest", "scale"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the e2e and ingest suites")
    parser.add_argument("--scale-rows", type=int, default=10_000_000, help="rows for the scale suite and e2e's --hold run")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per side; the fastest and the median are reported")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    figures = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"}
    suites = {"e2e": lambda: e2e.run(args.rows, args.scale_rows, repeat=args.repeat),  # first: what users run, from the outside
              "ingest": lambda: ingest.run(args.rows, args.repeat),
              "scale": lambda: scale.run(args.scale_rows, args.rows)}  # fmt: skip
    for name, suite in suites.items():
        if args.suite in ("all", name):
            figures[name] = suite()
            if not args.json:
                print(f"{name}: {figures[name]}", flush=True)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"machine: {figures['machine']}; peak_rss_mb: {figures['peak_rss_mb']}")

if __name__ == "__main__":
    main()
