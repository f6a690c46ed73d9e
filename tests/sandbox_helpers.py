"""Small clients for talking to the sandbox in tests, raw over HTTP."""

from __future__ import annotations

import httpx

MAGPIPE = "/functions/v1/batch-calls"
BEARER = {"Authorization": "Bearer sandbox-key"}
BC_HEADERS = {"X-API-KEY": "sandbox-key", "X-API-SECRET": "sandbox-secret"}
CALLER = "+16045551234"
AGENT = "agent_7ff47846-c8a0-4304-ae13-88cfc31c1a03"


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+1415555{n:04d}" for n in range(start, start + count)]


def mp(url: str, body: dict, headers: dict | None = None, timeout: float = 10) -> httpx.Response:
    return httpx.post(url + MAGPIPE, json=body, headers=BEARER if headers is None else headers, timeout=timeout)


def mp_create(url: str, phones: list[str], **extra) -> dict:
    body = {"action": "create", "name": extra.pop("name", "t"), "caller_id": CALLER, "recipients": [{"phone_number": p} for p in phones]}
    response = mp(url, body | extra)
    assert response.status_code == 200, response.text
    return response.json()["batch"]


def bc_create(url: str, phones: list[str], **extra) -> httpx.Response:
    body = {"from_number": "+14157774444", "tasks": [{"to_number": p} for p in phones], "name": "bc"} | extra
    return httpx.post(url + "/batch-call", json=body, headers=BC_HEADERS, timeout=10)


def recipients(url: str) -> list[dict]:
    return httpx.get(url + "/_sandbox/recipients", timeout=10).json()


def advance_clock(url: str, seconds: float) -> None:
    """Move the sandbox's clock forward: the calls it simulates ring, end and finish without being waited for."""
    response = httpx.post(url + "/_sandbox/clock", json={"advance_seconds": seconds}, timeout=10)
    assert response.status_code == 200, response.text
