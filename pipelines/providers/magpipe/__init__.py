"""The magpipe dialect, declared once: POST {base}/batch-calls with an action (create, list, get, update, start, cancel).

This folder holds all of it: `client.py` (what the tool sends), `wire.py` (the request and
answer models), `sandbox.py` (how the sandbox answers it). Schedules: a batch carries one
daily window and a set of weekdays on the account's clock, and a start time.
"""

from __future__ import annotations

from pipelines.providers.spec import Dialect, ProviderSpec, later
from pipelines.setting import Setting, read_secret, read_text

DEFAULT_URL = "https://api.magpipe.ai/functions/v1"

DIALECT = Dialect(
    "magpipe", batch_limit=500, stops_running=True, moves_scheduled=False, has_drafts=True, reads_back=True, in_flight=4,
    account_window=True,
    settings=(
        Setting("magpipe_api_key", None, "magpipe's API key.", read_secret, None, "MAGPIPE_API_KEY", secret=True),
        Setting("magpipe_base_url", DEFAULT_URL, "magpipe's server.", read_text, None, "MAGPIPE_BASE_URL", "magpipe_base_url"),
    ),
    sandbox_client=later(f"{__name__}.client", "connect_sandbox"), sandbox_routes=later(f"{__name__}.sandbox", "MagpipeRoutes"),
    sandbox_hint="POST {url}/functions/v1/batch-calls   Authorization: Bearer {key}",
)  # fmt: skip
PROVIDER = ProviderSpec("magpipe", DIALECT, credentials=("MAGPIPE_API_KEY",), needs_caller_id=True,
                        open=later(f"{__name__}.client", "connect"))
