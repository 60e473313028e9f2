"""A fake third-party "partner" API that the seeded function calls with its API key.

It gives the secret in ``PARTNER_API_KEY`` a real consequence: the function only gets
``{"status": "accepted"}`` when it presents a currently valid key, so moving the key to
Secrets Manager (or rotating it) is proven by the function still working, and a wrong
or stale key is a visible 401.

Routes (the lab core forwards every ``/_lab/partner/...`` request here):

- ``POST /_lab/partner/v1/orders``: 200 ``{"status": "accepted"}`` when header
  ``x-api-key`` is a valid key, else 401 ``{"status": "unauthorized"}``;
- ``POST /_lab/partner/keys`` with ``{"keys": [...]}``: replace the valid keys
  (rotation tests); answers only how many keys are now valid;
- ``GET /_lab/partner/stats``: counts of accepted and rejected calls.

A key is never logged, echoed or kept anywhere but in :class:`PartnerApi`'s memory.
"""

from __future__ import annotations

import hmac
import json
import threading

PREFIX = "/_lab/partner"
JSON_HEADERS = {"Content-Type": "application/json"}


class PartnerApi:
    """The partner API's state (valid keys, call counts) and its request handler."""

    def __init__(self, valid_keys: list[str] | None = None):
        self._lock = threading.Lock()
        self._keys: tuple[bytes, ...] = ()
        self._accepted = 0
        self._rejected = 0
        self.set_valid_keys(valid_keys or [])

    def __repr__(self) -> str:  # never show the keys
        return f"PartnerApi(valid_keys={len(self._keys)})"

    def set_valid_keys(self, keys: list[str]) -> None:
        """Replace the keys the API accepts (empty strings are ignored)."""
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise TypeError("keys must be a list of strings")
        with self._lock:
            self._keys = tuple(k.encode("utf-8") for k in keys if k)

    def is_valid(self, key: str | None) -> bool:
        """Constant-time check of one presented key."""
        if not key:
            return False
        presented = key.encode("utf-8")
        with self._lock:
            keys = self._keys
        # compare against every key so timing does not reveal which one matched
        matches = [hmac.compare_digest(presented, k) for k in keys]
        return any(matches)

    def stats(self) -> dict:
        """``{"accepted": n, "rejected": n, "valid_keys": n}``."""
        with self._lock:
            return {"accepted": self._accepted, "rejected": self._rejected,
                    "valid_keys": len(self._keys)}

    def handle(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        """Answer one HTTP request; returns ``(status, headers, body)``."""
        route = path.split("?", 1)[0]
        if route.startswith(PREFIX):
            route = route[len(PREFIX):]
        route = "/" + route.strip("/")
        method = method.upper()
        if route == "/v1/orders":
            if method != "POST":
                return _reply(405, {"status": "method not allowed"})
            return self._orders(headers)
        if route == "/keys":
            if method != "POST":
                return _reply(405, {"status": "method not allowed"})
            return self._replace_keys(body)
        if route == "/stats" and method == "GET":
            return _reply(200, self.stats())
        return _reply(404, {"status": "not found"})

    def _orders(self, headers: dict) -> tuple[int, dict, bytes]:
        key = _header(headers, "x-api-key")
        accepted = self.is_valid(key)
        with self._lock:
            if accepted:
                self._accepted += 1
            else:
                self._rejected += 1
        if accepted:
            return _reply(200, {"status": "accepted"})
        return _reply(401, {"status": "unauthorized"})

    def _replace_keys(self, body: bytes) -> tuple[int, dict, bytes]:
        try:
            document = json.loads(body or b"{}")
            keys = document["keys"]
            self.set_valid_keys(keys)
        except (ValueError, KeyError, TypeError):
            return _reply(400, {"status": "bad request",
                                "message": 'expected JSON {"keys": ["...", ...]}'})
        return _reply(200, {"status": "ok", "valid_keys": self.stats()["valid_keys"]})


def _header(headers: dict, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _reply(status: int, document: dict) -> tuple[int, dict, bytes]:
    return status, dict(JSON_HEADERS), json.dumps(document).encode()
