"""A fake vendor that lives in process memory or in a SQLite file, with no HTTP at all.

This package is found through the `synchub.connectors` entry point `fake`. It is a real
connector (pages, cursors, batches, typed errors, signed webhooks) whose "vendor" is a table:
the engine tests, the crash test and the benchmarks run against it.

- `options.state` is `:memory:` (the default: instances whose system has the same `name`
  share one in-process store) or a SQLite file path (instances and processes with the same
  path share state, and a SIGKILLed run restarted later finds the vendor as it left it).
- Records carry a vendor `id` ("F-000001", per object) and a `modstamp` (an integer bumped
  by every write, strictly increasing per store; several records may share one, see
  `touch_many`). `pull` resumes strictly after the cursor `"<modstamp>:<id>"`.
- `options.faults` injects seeded rate limits, outages, latency and per-record rejections.
- `FakeVendor` reads and seeds the vendor state from outside, as an admin of the vendor would.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "description": "Anything: the fake vendor checks no credentials.",
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "secret": {
                "type": "string",
                "minLength": 1,
                "description": "Key of the hex HMAC-SHA256 of the body sent in X-Fake-Signature.",
            }
        },
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "state": {
                "type": "string",
                "minLength": 1,
                "default": ":memory:",
                "description": "':memory:' (shared in process by system name) or a SQLite file path "
                               "(shared by every instance and process using it).",
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "default": 500,
                "description": "Records per pull page (one API call each).",
            },
            "batch_size": {
                "type": "integer",
                "minimum": 1,
                "default": 200,
                "description": "Write operations (or ids of a get) per API call.",
            },
            "key_field": {
                "type": "string",
                "minLength": 1,
                "default": "hub_id",
                "description": "Payload field carrying the hub's idempotency key (upserts match on it).",
            },
            "faults": {
                "type": "object",
                "additionalProperties": False,
                "required": [],
                "properties": {
                    "seed": {
                        "type": "integer",
                        "description": "Seed of the fault draws, for reproducible runs.",
                    },
                    "rate_limit": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "Probability that a call answers RateLimited (retry_after 0.01..0.05 s).",
                    },
                    "unavailable": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "Probability that a call answers Unavailable.",
                    },
                    "latency_ms": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Milliseconds slept by every call.",
                    },
                    "reject_field": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Payload field checked by the fake validation.",
                    },
                    "reject_pattern": {
                        "type": "string",
                        "minLength": 1,
                        "description": "A write whose reject_field contains this text is Rejected.",
                    },
                },
            },
        },
    },
}

from connectors.fake.connector import FakeConnector, FakeVendor, sign, signed_request  # noqa: E402

Connector = FakeConnector

__all__ = ["SETTINGS_SCHEMA", "Connector", "FakeConnector", "FakeVendor", "sign", "signed_request"]
