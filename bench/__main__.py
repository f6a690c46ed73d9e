"""`python -m bench [all|e2e|ingest|scale|duckdb] [--rows N] [--repeat K] [--json]`: run the benchmarks and print their figures."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource

from bench import duckdb_load, e2e, ingest, scale


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("suite", nargs="?", default="all", choices=["all", "e2e", "ingest", "scale", "duckdb"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the e2e, ingest and duckdb suites")
    parser.add_argument("--scale-rows", type=int, default=10_000_000, help="rows for the scale suite and e2e's --hold run")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per side; the fastest and the median are reported")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    figures = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"}
    if args.suite in ("all", "e2e"):  # first: what users run, from the outside
        figures["e2e"] = e2e.run(args.rows, args.scale_rows, repeat=args.repeat)
    if args.suite in ("all", "ingest"):
        figures["ingest"] = ingest.run(args.rows, args.repeat)
    if args.suite in ("all", "scale"):
        figures["scale"] = scale.run(args.scale_rows, args.rows)
    if args.suite in ("all", "duckdb"):
        figures["duckdb_load"] = duckdb_load.run(args.rows)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name}: {value}")


if __name__ == "__main__":
    main()
