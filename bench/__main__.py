"""Placeholder until the throughput issue lands: prints what will be measured."""

print("bench: no benchmarks yet (see bench/RESULTS.md)")
