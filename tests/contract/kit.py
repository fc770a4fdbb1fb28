"""What the contract suite needs to know of a vendor: one `ContractKit` per connector.

The suite (`test_contract.py`) is the same for every connector: it starts the vendor's
sandbox over real HTTP on loopback, points the connector at it, and checks the contract of
`connectors/base.py`. A kit (`kits/<vendor>.py`) supplies only what differs by vendor: the
object to test on, a valid and an invalid payload in the vendor's shape, how a record's id
and label are read, the fewest calls a push can take, and how to make a signed webhook stale.

Every sandbox serves the same control routes, which the suite calls directly:

- `POST /_sandbox/expire-tokens`: every token issued so far stops working (the vendor's
  expired-token answer), so the connector must refresh;
- `POST /_sandbox/touch` `{"object": ..., "ids": [...]}`: these records get one new,
  identical modification time (records sharing a timestamp across a page boundary);
- `GET /_sandbox/records/{object}` → `{"records": [...]}`: the vendor's whole table, for
  asserting that nothing was created twice;
- `PUT /_sandbox/webhooks` `{"url": ...}`: where change webhooks go (from `SandboxKit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import requests

from connectors.base import WebhookRequest
from connectors.sandbox import RunningServer, SandboxOptions, load, serve, system_for
from hub.config.model import System


@dataclass
class Sandbox:
    """A started sandbox, with its control routes as methods."""

    server: RunningServer
    name: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def verify(self) -> bool | str:
        return self.server.ca_file or True

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = requests.request(method, f"{self.base_url}/_sandbox/{path}", json=json, timeout=10,
                                    verify=self.verify)
        response.raise_for_status()
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")  # type: ignore[no-any-return]

    def reset_stats(self) -> None:
        self.control("DELETE", "stats")

    def force(self, *kinds: str) -> None:
        self.control("PUT", "faults", {"next": list(kinds)})

    def records(self, obj: str) -> list[dict[str, Any]]:
        return self.control("GET", f"records/{obj}")["records"]  # type: ignore[no-any-return]

    def touch(self, obj: str, ids: list[str]) -> None:
        self.control("POST", "touch", {"object": obj, "ids": ids})

    def expire_tokens(self) -> None:
        self.control("POST", "expire-tokens")

    def webhooks_to(self, url: str | None) -> None:
        self.control("PUT", "webhooks", {"url": url})

    def stop(self) -> None:
        self.server.stop()


@dataclass
class ContractKit:
    """A vendor's answers to the suite's questions (see the module docstring).

    Subclasses set the class attributes and override the methods that raise.
    """

    name: str = ""                 # connector (and sandbox) name
    obj: str = ""                  # the object the record tests use, e.g. "Account"
    key_field: str = ""            # vendor field that holds the hub's idempotency key
    batch_limit: int = 1           # most records one write call takes (1: per record)
    page_size: int = 10            # records per pull page, set through `options` for the tests
    tls: bool = False              # serve the sandbox over HTTPS (for clients that insist)
    token_expiry: bool = True      # False when the vendor's credentials do not expire (skips that test)
    webhook_timestamps: bool = True  # False when the vendor's webhooks carry no timestamp to go stale
    options: dict[str, Any] = field(default_factory=dict)  # extra system `options` for the tests
    # tests of the suite that do not apply to this vendor, by test function name, with the reason
    # (an approval cannot be upserted by our key, say); the reason shows in the test report
    skips: dict[str, str] = field(default_factory=dict)
    updates: bool = True           # False when records cannot be updated through `push` (approvals)
    upserts: bool = True           # False when the vendor has no upsert by a key of ours
    # The vendor field of a record's change time, for connectors that read a recent cursor's
    # whole second again (vendors that stamp to the second cannot say which records of that
    # second changed after the cursor was taken); None: pulls from a cursor are exact.
    rereads_stamp: str | None = None

    # --- sandbox and system --------------------------------------------------------------

    def start(self, records: int, webhook_url: str | None = None) -> Sandbox:
        module = load(self.name)
        options = SandboxOptions(records=records, seed=11, webhook_url=webhook_url, webhook_retry_scale=0.01)
        return Sandbox(serve(module.create_app(options), tls=self.tls), self.name)

    def system(self, sandbox: Sandbox) -> System:
        """A System pointing at the sandbox, as a hub config would declare it."""
        return system_for(self.name, sandbox.server, f"{self.name}-test", self.options, timeout=10.0)

    # --- records -------------------------------------------------------------------------

    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        """A payload the vendor accepts, distinct by `n`, carrying `key` in `key_field`."""
        raise NotImplementedError

    def invalid_record(self) -> dict[str, Any]:
        """A payload the vendor refuses with a validation error."""
        raise NotImplementedError

    def edit(self, n: int) -> dict[str, Any]:
        """An update payload that changes what `label` reads."""
        raise NotImplementedError

    def label(self, record: dict[str, Any]) -> str:
        """The value `new_record` / `edit` set, read back from a pulled or fetched record."""
        raise NotImplementedError

    def record_id(self, record: dict[str, Any]) -> str:
        """The vendor id of a pulled or fetched record."""
        raise NotImplementedError

    def change(self, sandbox: Sandbox, connector: Any, external_id: str, n: int) -> None:
        """Change a record on the vendor's side, as a user would (webhook tests use it)."""
        from connectors.base import OpKind, WriteOp

        [result] = connector.push(self.obj, [WriteOp(OpKind.UPDATE, self.edit(n), "k", external_id)])
        assert result.ok, result.error

    def key_of(self, record: dict[str, Any]) -> str | None:
        """The idempotency key a sandbox record carries (from `Sandbox.records`)."""
        value = record.get(self.key_field)
        return None if value in (None, False, "") else str(value)

    # --- calls ---------------------------------------------------------------------------

    def min_push_calls(self, count: int) -> int:
        """The fewest write calls the vendor's batch limit allows for `count` records."""
        return math.ceil(count / self.batch_limit)

    def write_calls(self, stats: dict[str, Any]) -> int:
        """Write calls in a sandbox's stats (token and read calls left out)."""
        return sum(n for route, n in stats["by_route"].items()
                   if route.split(" ", 1)[0] in ("POST", "PATCH", "PUT") and not self.is_auth_route(route))

    def is_auth_route(self, route: str) -> bool:
        lowered = route.lower()
        return any(part in lowered for part in ("token", "authenticate", "login"))

    # --- webhooks ------------------------------------------------------------------------

    def stale(self, request: WebhookRequest, sandbox: Sandbox) -> WebhookRequest:
        """The same webhook signed correctly but with a timestamp past the vendor's window."""
        raise NotImplementedError

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        """The same webhook with one byte of its body changed (the signature no longer fits)."""
        body = bytearray(request.body)
        index = len(body) // 2
        body[index] = ord("A") if body[index] != ord("A") else ord("B")
        return WebhookRequest(request.method, request.url, request.headers, request.query, bytes(body))
