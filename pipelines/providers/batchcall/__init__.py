"""The batchcall dialect, declared once: POST /batch-call, PUT /batch-call/{id}, GET /batch-call[/{id}].

This folder holds all of it: `client.py` (what the tool sends), `wire.py` (the request and
answer models), `sandbox.py` (how the sandbox answers it). Schedules: a batch carries a
start instant (trigger_timestamp, ms) and a timezone label; it has no window of its own.
"""

from __future__ import annotations

from pipelines.providers.spec import Dialect, ProviderSpec, later
from pipelines.setting import Setting, read_secret, read_text


DIALECT = Dialect(
    "batchcall", batch_limit=1000, stops_running=False, moves_scheduled=True, has_drafts=True, reads_back=True,
    in_flight=4, account_window=False,
    settings=(
        Setting("batchcall_api_key", None, "batchcall's API key.", read_secret, None, "BATCHCALL_API_KEY", secret=True),
        Setting("batchcall_api_secret", None, "batchcall's API secret.", read_secret, None, "BATCHCALL_API_SECRET",
                secret=True),
        Setting("batchcall_base_url", None, "batchcall's server (required for batchcall).", read_text, None,
                "BATCHCALL_BASE_URL", "batchcall_base_url"),
    ),
    sandbox_client=later(f"{__name__}.client", "connect_sandbox"), sandbox_routes=later(f"{__name__}.sandbox", "BatchcallRoutes"),
    sandbox_hint="POST/PUT/GET {url}/batch-call        X-API-KEY: {key}  X-API-SECRET: {secret}",
)  # fmt: skip
PROVIDER = ProviderSpec("batchcall", DIALECT, credentials=("BATCHCALL_API_KEY", "BATCHCALL_API_SECRET", "BATCHCALL_BASE_URL"),
                        needs_caller_id=True, open=later(f"{__name__}.client", "connect"))  # fmt: skip
