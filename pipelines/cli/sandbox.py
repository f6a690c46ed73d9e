"""`campaigns sandbox`: run the provider sandbox in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli.app import app
from pipelines.cli.options import settings_of
from pipelines.errors import UsageError


@app.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; loopback unless you mean it.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port to listen on.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Simulated time runs this many times faster.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for call outcomes and faults.")
@click.option("--faults", default="", help="Fault probabilities, e.g. 429=0.1,500=0.1,503=0.05,slow=0.05,reset=0.2.")
@click.option("--state", type=click.Path(path_type=Path), help="SQLite file that keeps batches across restarts [default: in memory].")
@click.option("--caller-id", "caller_ids", multiple=True, metavar="E164", help="A caller number the account owns (repeat).")
def sandbox_command(host, port, speed, seed, faults, state, caller_ids) -> None:
    """Run the provider sandbox: both batch-call APIs over HTTP, simulated calls, injected faults."""
    from rich.console import Console

    from pipelines import console as show
    from pipelines.sandbox.app import SandboxConfig
    from pipelines.sandbox.faults import FaultPlan
    from pipelines.sandbox.server import serve

    settings = settings_of({})  # the sandbox's own key and secret come from the environment, never the command line
    try:
        FaultPlan.parse(faults)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    if speed <= 0:
        raise UsageError("--speed must be positive")
    secrets = {name: value for name, value in (("api_key", settings.sandbox_key), ("api_secret", settings.sandbox_secret)) if value}
    secrets = {name: value.get_secret_value() for name, value in secrets.items()}
    config = SandboxConfig(speed=speed, seed=seed, faults=faults, state_path=state,
                           caller_ids=tuple(caller_ids or SandboxConfig().caller_ids), **secrets)  # fmt: skip
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    show.sandbox_banner(err, config, host, port, key_from_env="api_key" in secrets, secret_from_env="api_secret" in secrets)
    serve(config, host, port)
