"""HubSpot CRM objects (companies, contacts, deals, line items) through the CRM v3 API.

Pulling. A first pull (`since` None) walks the list endpoint, which has no result cap. Later
pulls search on the last-modified property, sorted ascending; a search reaches at most
10,000 results, so the connector restarts it from the last timestamp it saw before the cap.
HubSpot search takes one sort only, so records sharing a timestamp come in no set order: the
cursor holds the timestamp and the ids already taken at it, and a resumed search skips those.

The final cursor of a full listing is the newest timestamp seen, unless a record changed
while the listing ran (a timestamp after the listing began, read from the first answer's
`Date`): then it is the listing's start, so that nothing changed during it is missed.

Deals carry their line items (`line_items`, read in batches) and their associations
(`associations.companies.results[].id`), so that the order mapping can read both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import structlog

from connectors.base import (
    ConnectorError,
    Limits,
    OpKind,
    Page,
    Rejected,
    WebhookReply,
    WebhookRequest,
    WriteOp,
    WriteResult,
    finish_partial,
)
from connectors.hubspot import webhook as hooks
from connectors.hubspot.client import HubSpotClient
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

BASE_URL = "https://api.hubapi.com"
MAX_PAGE = 100
MAX_BATCH = 100
SEARCH_CAP = 10_000
LINE_ITEM_PROPERTIES = ["name", "quantity", "price", "amount", "hs_product_id", "hs_sku", "hs_position_on_quote",
                        "hs_discount_percentage", "hs_tax_rate", "hs_lastmodifieddate", "createdate"]
# The v3 key of an object type in `associations`; HubSpot has also been seen to write "line items".
ASSOCIATED_WITH_DEALS = ("line_items", "companies")


def modified_property(obj: str) -> str:
    """The last-modified property of an object type (contacts have their own name for it)."""
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"


def epoch_ms(value: Any) -> int | None:
    """A HubSpot datetime (ISO 8601 in records, epoch milliseconds in filters) in milliseconds."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(round(moment.timestamp() * 1000))


# --- cursors -------------------------------------------------------------------------------


@dataclass
class Cursor:
    """Where a pull stands: `ts` and the ids taken at it; `after`/`start` while a listing runs."""

    ts: int = 0
    taken: list[str] = field(default_factory=list)
    after: str | None = None      # next page of a full listing (list mode only)
    start: int | None = None      # when the listing began, by the portal's clock
    listing: bool = False

    def encode(self) -> str:
        data: dict[str, Any] = {"t": self.ts, "ids": self.taken}
        if self.listing:
            data.update(list=True, after=self.after, start=self.start)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            data = json.loads(text)
            cursor = cls(int(data["t"]), [str(i) for i in data.get("ids", [])])
            if data.get("list"):
                cursor.listing = True
                cursor.after = data.get("after")
                cursor.start = None if data.get("start") is None else int(data["start"])
            return cursor
        except (ValueError, KeyError, TypeError):
            raise ConnectorError("hubspot: cursor is not one this connector wrote") from None

    def take(self, ts: int, record_id: str) -> None:
        """Move past one record, in ascending timestamp order."""
        if ts > self.ts:
            self.ts, self.taken = ts, [record_id]
        elif ts == self.ts:
            self.taken.append(record_id)


def encode_cursor(ts: int, taken: list[str] | None = None) -> str:
    """A search cursor at `ts` (for tools and tests that start a pull from a moment)."""
    return Cursor(ts, list(taken or [])).encode()


# --- the connector -------------------------------------------------------------------------


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class HubSpotConnector:
    """HubSpot seen through the connector contract (see the module docstring)."""

    name = "hubspot"

    def __init__(self, settings: System, session: Any = None) -> None:
        self.settings = settings
        options = {k: reveal(v) for k, v in (settings.options or {}).items()}
        self.page_size = max(1, min(MAX_PAGE, int(options.get("page_size") or MAX_PAGE)))
        self.limits = Limits(page_size=MAX_PAGE, batch_size=MAX_BATCH)
        self.declared_properties: dict[str, list[str]] = {
            str(k): [str(p) for p in v] for k, v in (options.get("properties") or {}).items()}
        verify: bool | str = options.get("ca_file") or True
        base_url = str(reveal(settings.base_url) or BASE_URL)
        self.client = HubSpotClient(base_url, settings.auth or {}, timeout=settings.timeout, verify=verify)
        self._properties: dict[str, list[str]] = {}
        self.log = log.bind(system=settings.name, connector="hubspot")

    def __repr__(self) -> str:
        return f"HubSpotConnector(system={self.settings.name!r})"

    # --- properties ----------------------------------------------------------------------

    def properties(self, obj: str) -> list[str]:
        """The properties to read: the `properties` option, else every property of the type."""
        if obj in self.declared_properties:
            names = list(self.declared_properties[obj])
        elif obj in self._properties:
            names = self._properties[obj]
        else:
            _, body = self.client.call("GET", f"/crm/v3/properties/{obj}", params={"archived": "false"})
            names = [str(p["name"]) for p in body.get("results", []) if isinstance(p, dict) and p.get("name")]
            self._properties[obj] = names
        modified = modified_property(obj)
        return names if modified in names else [*names, modified]

    # --- reads ---------------------------------------------------------------------------

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        cursor = Cursor.decode(since) if since else None
        if cursor is None or cursor.listing:
            yield from self._list(obj, cursor)
        else:
            yield from self._search(obj, cursor)

    def _list(self, obj: str, resume: Cursor | None) -> Iterator[Page]:
        """Every record through the list endpoint (no 10,000 cap), then the cursor to search from."""
        properties = self.properties(obj)
        state = resume or Cursor(listing=True)
        state.listing = True
        modified = modified_property(obj)
        while True:
            params: dict[str, Any] = {"limit": self.page_size, "properties": ",".join(properties), "archived": "false"}
            if state.after:
                params["after"] = state.after
            if obj == "deals":
                params["associations"] = ",".join(ASSOCIATED_WITH_DEALS)
            response = self.client.send("GET", f"/crm/v3/objects/{obj}", params=params)
            if state.start is None:
                state.start = _server_time_ms(response.headers.get("Date"))
            body = self.client.json_object(response)
            records = list(body.get("results") or [])
            for record in records:
                ts = _record_ms(record, modified)
                if ts is not None and ts >= state.ts:
                    state.take(ts, str(record["id"]))
            state.after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if obj == "deals":
                self._attach_deal_parts(records, associations_read=True)
            if state.after is None:
                yield Page(records, _final(state).encode())
                return
            yield Page(records, state.encode())

    def _search(self, obj: str, cursor: Cursor) -> Iterator[Page]:
        """Records modified at or after the cursor, restarting the search before its cap."""
        properties = self.properties(obj)
        modified = modified_property(obj)
        while True:
            start = Cursor(cursor.ts, list(cursor.taken))
            skip = set(start.taken)
            after = 0
            fresh_in_session = 0
            while True:
                body = self._search_page(obj, modified, properties, start.ts, after)
                records = []
                for record in body.get("results") or []:
                    rid, ts = str(record["id"]), _record_ms(record, modified)
                    if ts is None:
                        continue
                    if ts == start.ts and rid in skip:
                        continue
                    cursor.take(ts, rid)
                    records.append(record)
                fresh_in_session += len(records)
                if records:
                    if obj == "deals":
                        self._attach_deal_parts(records)
                    yield Page(records, cursor.encode())
                following = ((body.get("paging") or {}).get("next") or {}).get("after")
                if following is None:
                    return
                after = int(following)
                if after >= SEARCH_CAP:
                    break
            if fresh_in_session == 0:
                raise ConnectorError(f"hubspot: more than {SEARCH_CAP} {obj} share {modified} {cursor.ts}; "
                                     "search cannot page past them")
            self.log.info("hubspot search cap reached, restarting", object=obj, ts=cursor.ts)

    def _search_page(self, obj: str, modified: str, properties: list[str], ts: int, after: int) -> dict[str, Any]:
        query = {
            "filterGroups": [{"filters": [{"propertyName": modified, "operator": "GTE", "value": str(ts)}]}],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": self.page_size,
            "after": str(after),
        }
        _, body = self.client.call("POST", f"/crm/v3/objects/{obj}/search", json=query)
        return body

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        wanted = [str(i) for i in dict.fromkeys(ids)]
        if not wanted:
            return []
        properties = self.properties(obj)
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(wanted, MAX_BATCH):
            body = {"inputs": [{"id": rid} for rid in chunk], "properties": properties}
            _, answer = self.client.call("POST", f"/crm/v3/objects/{obj}/batch/read", json=body)
            for record in answer.get("results") or []:
                found[str(record["id"])] = record
        records = [found[rid] for rid in wanted if rid in found]
        if obj == "deals":
            self._attach_deal_parts(records)
        return records

    # --- deals ---------------------------------------------------------------------------

    def _attach_deal_parts(self, deals: list[dict[str, Any]], associations_read: bool = False) -> None:
        """Give each deal `associations` (companies, line items) and its `line_items` records.

        The list endpoint reads associations with the deals (`associations=`, left out when a
        deal has none); search and batch read cannot, so those are read in v4 batches.
        """
        if not deals:
            return
        if associations_read:
            for deal in deals:
                deal.setdefault("associations", {})
        missing = [d for d in deals if not isinstance(d.get("associations"), dict)]
        if missing:
            for kind in ASSOCIATED_WITH_DEALS:
                linked = self._associated([str(d["id"]) for d in missing], "deals", kind)
                for deal in missing:
                    results = [{"id": i, "type": f"deal_to_{kind[:-1]}"} for i in linked.get(str(deal["id"]), [])]
                    deal.setdefault("associations", {})[kind] = {"results": results}
        item_ids: dict[str, list[str]] = {}
        for deal in deals:
            associations = deal["associations"]
            found = associations.get("line_items") or associations.pop("line items", None) or {"results": []}
            associations["line_items"] = found
            associations.setdefault("companies", {"results": []})
            item_ids[str(deal["id"])] = [str(a["id"]) for a in found.get("results", [])]
        every = list(dict.fromkeys(i for ids in item_ids.values() for i in ids))
        items = {str(r["id"]): r for r in self._read_line_items(every)}
        for deal in deals:
            lines = [items[i] for i in item_ids[str(deal["id"])] if i in items]
            lines.sort(key=_line_order)
            deal["line_items"] = lines

    def _associated(self, ids: list[str], from_type: str, to_type: str) -> dict[str, list[str]]:
        """The ids each record is associated with (v4 batch read, 100 per call)."""
        linked: dict[str, list[str]] = {}
        for chunk in _chunks(ids, MAX_BATCH):
            _, body = self.client.call("POST", f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                                       json={"inputs": [{"id": i} for i in chunk]})
            for result in body.get("results") or []:
                source = str((result.get("from") or {}).get("id"))
                linked[source] = [str(t["toObjectId"]) for t in result.get("to") or []]
        return linked

    def _read_line_items(self, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        properties = self.declared_properties.get("line_items", LINE_ITEM_PROPERTIES)
        found: list[dict[str, Any]] = []
        for chunk in _chunks(ids, MAX_BATCH):
            _, body = self.client.call("POST", "/crm/v3/objects/line_items/batch/read",
                                       json={"inputs": [{"id": i} for i in chunk], "properties": properties})
            found.extend(body.get("results") or [])
        return found

    # --- writes --------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        """Batches by kind; a failure after earlier batches wrote records hands back only the
        rest for a retry (`finish_partial`), so that a retry never creates a record twice."""
        results: list[WriteResult | None] = [None] * len(ops)
        for i, op in enumerate(ops):
            if op.kind not in (OpKind.CREATE, OpKind.UPDATE, OpKind.UPSERT):
                results[i] = WriteResult(False, op.external_id, error=Rejected(f"unknown operation {op.kind!r}"))
        try:
            for kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.UPSERT):
                indexed = [(i, op) for i, op in enumerate(ops) if op.kind == kind]
                for chunk in _chunks(indexed, MAX_BATCH):
                    self._write_chunk(obj, kind, chunk, results)
        except ConnectorError as exc:
            self.log.warning("hubspot push interrupted", object=obj, error=str(exc)[:300],
                             left=sum(r is None for r in results))
            return finish_partial(results, ops, exc)
        return [r for r in results if r is not None]

    def _write_chunk(self, obj: str, kind: OpKind, chunk: list[tuple[int, WriteOp]],
                     results: list[WriteResult | None]) -> None:
        """One batch call, or, when HubSpot refuses the batch as a whole, one call per input
        (each result stored as soon as it is known, so an outage midway loses none)."""
        ops = [op for _, op in chunk]
        try:
            written = self._write(obj, kind, ops)
        except _BatchRefused as refused:
            self.log.info("hubspot batch refused, writing its inputs one by one", object=obj, inputs=refused.inputs)
            for i, op in chunk:
                results[i] = self._write(obj, kind, [op])[0]
            return
        for (i, _), result in zip(chunk, written, strict=True):
            results[i] = result

    def _write(self, obj: str, kind: OpKind, ops: list[WriteOp]) -> list[WriteResult]:
        """One batch call; 207 answers are matched to inputs by objectWriteTraceId, then by id or key."""
        inputs: list[dict[str, Any]] = []
        early: dict[int, WriteResult] = {}
        for n, op in enumerate(ops):
            properties = _properties_of(op)
            key_property = _key_property(op.key_field)
            entry: dict[str, Any] = {"properties": properties, "objectWriteTraceId": str(n)}
            if kind == OpKind.CREATE:
                if key_property and op.key:
                    properties.setdefault(key_property, op.key)
                if isinstance(op.payload.get("associations"), list):
                    entry["associations"] = op.payload["associations"]
            elif kind == OpKind.UPDATE:
                if not op.external_id:
                    early[n] = WriteResult(False, None, error=Rejected("update without a HubSpot id"))
                    continue
                entry["id"] = str(op.external_id)
            else:
                if not key_property:
                    early[n] = WriteResult(False, op.external_id, error=Rejected("upsert without a key_field"))
                    continue
                properties.pop(key_property, None)
                entry.update(idProperty=key_property, id=str(op.key))
            inputs.append(entry)
        if not inputs:
            return [early[n] for n in range(len(ops))]
        path = f"/crm/v3/objects/{obj}/batch/{kind.value}"
        try:
            status, body = self.client.call("POST", path, json={"inputs": inputs})
        except Rejected as refused:
            if len(inputs) > 1:  # HubSpot may refuse a whole batch for one bad input: find which
                raise _BatchRefused(len(inputs)) from None
            return [early.get(n) or WriteResult(False, op.external_id, error=refused) for n, op in enumerate(ops)]
        done = _match_results(ops, inputs, body, kind)
        self.log.debug("hubspot batch written", object=obj, kind=kind.value, inputs=len(inputs), status=status)
        return [early.get(n) or done[n] for n in range(len(ops))]

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        secret = reveal((self.settings.webhook or {}).get("client_secret"))
        if not secret:
            return WebhookReply(401, b"", "text/plain")
        uri = str(reveal((self.settings.webhook or {}).get("url")) or request.url)
        try:
            hooks.verify(str(secret), request.method, uri, request.headers, request.body, _now_ms())
            events = hooks.parse_events(request.body)
        except hooks.BadWebhook as exc:
            self.log.warning("hubspot webhook refused", reason=str(exc), status=exc.status)
            return WebhookReply(exc.status, b"", "text/plain")
        except Exception as exc:  # noqa: BLE001 - a webhook answer must never raise
            self.log.error("hubspot webhook failed", error=type(exc).__name__)
            return WebhookReply(400, b"", "text/plain")
        return WebhookReply(200, b"", "text/plain", events)

    def close(self) -> None:
        self.client.close()


# --- helpers -------------------------------------------------------------------------------


class _BatchRefused(Exception):
    """HubSpot refused a batch of several inputs as a whole: each is written on its own."""

    def __init__(self, inputs: int) -> None:
        super().__init__(f"batch of {inputs} inputs refused")
        self.inputs = inputs

def _key_property(key_field: str | None) -> str | None:
    """The HubSpot property named by a mapping key such as `properties.synchub_id`."""
    if not key_field:
        return None
    return key_field.split(".", 1)[1] if key_field.startswith("properties.") else key_field


def _properties_of(op: WriteOp) -> dict[str, Any]:
    """The payload's `properties`, as strings (HubSpot takes every value as text)."""
    given = op.payload.get("properties")
    if not isinstance(given, Mapping):
        given = {k: v for k, v in op.payload.items() if k not in ("id", "associations")}
    return {str(k): _text(v) for k, v in given.items()}


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _match_results(ops: list[WriteOp], inputs: list[dict[str, Any]], body: Mapping[str, Any],
                   kind: OpKind) -> dict[int, WriteResult]:
    """One WriteResult per input position of a batch answer (200, 201 or 207)."""
    by_trace = {str(entry["objectWriteTraceId"]): int(entry["objectWriteTraceId"]) for entry in inputs}
    by_id = {str(entry["id"]): int(entry["objectWriteTraceId"]) for entry in inputs if "id" in entry}
    key_of = {n: _key_property(op.key_field) for n, op in enumerate(ops)}
    by_key = {str(op.key): n for n, op in enumerate(ops) if key_of[n]}
    done: dict[int, WriteResult] = {}
    for result in body.get("results") or []:
        n = _position(result, by_trace, by_id if kind != OpKind.UPSERT else {}, by_key, key_of)
        if n is None:
            continue
        created = bool(result.get("new")) if kind == OpKind.UPSERT else kind == OpKind.CREATE
        done[n] = WriteResult(True, str(result["id"]), created=created)
    for error in body.get("errors") or []:
        context = error.get("context") or {}
        positions = [by_trace.get(str(t)) for t in context.get("objectWriteTraceId") or []]
        positions += [by_id.get(str(i)) for i in context.get("ids") or []]
        reason = _error_text(error)
        for n in positions:
            if n is not None and n not in done:
                done[n] = WriteResult(False, ops[n].external_id,
                                      error=Rejected(reason, str(error.get("category") or "ERROR")))
    for n in range(len(ops)):
        if n not in done and any(int(e["objectWriteTraceId"]) == n for e in inputs):
            reason = _error_text((body.get("errors") or [{}])[0]) if body.get("errors") else "no result for this input"
            done[n] = WriteResult(False, ops[n].external_id, error=Rejected(f"hubspot: {reason}", "MISSING_RESULT"))
    return done


def _position(result: Mapping[str, Any], by_trace: dict[str, int], by_id: dict[str, int], by_key: dict[str, int],
              key_of: dict[int, str | None]) -> int | None:
    trace = result.get("objectWriteTraceId")
    if trace is not None and str(trace) in by_trace:
        return by_trace[str(trace)]
    if str(result.get("id")) in by_id:
        return by_id[str(result["id"])]
    properties = result.get("properties") or {}
    for key, n in by_key.items():
        prop = key_of[n]
        if prop and properties.get(prop) == key:
            return n
    return None


def _error_text(error: Mapping[str, Any]) -> str:
    message = str(error.get("message") or "rejected").strip()
    category = error.get("category")
    return f"{message} ({category})" if category else message


def _record_ms(record: Mapping[str, Any], modified: str) -> int | None:
    properties = record.get("properties") or {}
    return epoch_ms(properties.get(modified)) or epoch_ms(record.get("updatedAt"))


def _line_order(item: Mapping[str, Any]) -> tuple[float, int]:
    position = (item.get("properties") or {}).get("hs_position_on_quote")
    try:
        rank = float(position) if position not in (None, "") else float("inf")
    except ValueError:
        rank = float("inf")
    rid = str(item.get("id", ""))
    return rank, int(rid) if rid.isdigit() else 0


def _server_time_ms(date_header: str | None) -> int | None:
    if not date_header:
        return None
    try:
        return int(parsedate_to_datetime(date_header).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _final(state: Cursor) -> Cursor:
    """The search cursor a finished listing hands on (see the module docstring)."""
    if state.start is not None and state.ts >= state.start:
        return Cursor(state.start, [])
    return Cursor(state.ts, list(state.taken))


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
