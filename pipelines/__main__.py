"""`python -m pipelines` runs the `campaigns` CLI."""

from pipelines.cli import entry

entry()
