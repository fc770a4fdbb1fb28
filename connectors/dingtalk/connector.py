"""DingTalk approvals (OA审批) as the hub's `approval` entity.

Objects are approval kinds (`contract`, `leave`, `overtime`, or any kind configured): each
names a DingTalk process code in the system's options (`kinds.<kind>.process_code`, or the
short form `process_codes.<kind>`), optionally with the form's component types
(`kinds.<kind>.fields`: label -> componentType) and a default originator / department.
`options.api: old` switches every call to the old `oapi` API; records look the same.

Records (what `get` and `pull` return, what the mappings read) are the new API's
`GET /v1.0/workflow/processInstances` result plus three fields the connector adds:
`processInstanceId`, `processCode`, and `form`, the form values as `{label: value}`. The
mapping language cannot pick an item out of `formComponentValues` (a list of
`{name, value}`) by its name, so this decoding, and the encoding of `form` back into that
list on create, are the connector's job.

Writes. CREATE starts an instance from the mapping's output: `originatorUserId`, `deptId`,
`approvers` (user ids) and `form`. An instance is not editable, so UPDATE does nothing
(and says so in the log) unless its payload asks for withdrawal: `status: TERMINATED`
(the mappings write it for canonical status `withdrawn`), which terminates the instance,
with `remark` as the reason. UPSERT has nothing to match on (DingTalk cannot search by a
form value) and is refused unless it carries the instance id.

Pull. DingTalk lists instance ids by *start* time only, within a limited window, and its
times have minute precision (`2024-05-01T08:30Z`). A pull lists the ids started in
[cursor time - `lookback_days`, now] (a full pull: the last `history_days`), fetches each
instance, and keeps those whose last change (latest of create, finish, task and
operation-record times) is after the cursor, in (time, id) order. Because many changes share
one minute, the cursor is `v1:<ms>:<fingerprints>`: the time of the last record yielded and
a short digest of (id, content) of every record yielded at exactly that time; a record at
that time is yielded again only when its content changed. So records sharing a time across
a page boundary are neither lost nor repeated, and a change made later in the same minute
is still seen. The candidates of one pull are ordered before the first page is yielded: up
to `_BUFFERED` fetched instances are kept, the rest are fetched again when their page comes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
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
from connectors.dingtalk import crypto
from connectors.dingtalk.client import DEFAULT_NEW_HOST, DEFAULT_OLD_HOST, NEW_API, OLD_API, DingTalkClient
from connectors.dingtalk.webhook import CallbackKeys, CallbackRefused, approval_event, open_callback, success_reply
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

MAX_PAGE = 20            # most ids one listing call returns (both APIs)
DAY_MS = 86_400_000
_BUFFERED = 2000         # fetched instances kept in memory per pull; beyond, fetched again
WITHDRAW = "TERMINATED"  # the payload status that asks for withdrawal (see the module docstring)
_CURSOR_VERSION = "v1"


@dataclass(frozen=True)
class Kind:
    """One approval kind as configured: its process code and form layout."""

    name: str
    process_code: str
    fields: dict[str, str] = field(default_factory=dict)   # form label -> componentType
    originator: str | None = None
    dept_id: int | None = None


@dataclass(frozen=True)
class Cursor:
    """The last change time yielded and the fingerprints of the records yielded at that time."""

    ms: int
    seen: frozenset[str] = frozenset()

    def encode(self) -> str:
        return f"{_CURSOR_VERSION}:{self.ms}:{'.'.join(sorted(self.seen))}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        version, _, rest = text.partition(":")
        ms, _, seen = rest.partition(":")
        if version != _CURSOR_VERSION or not ms.isdigit():
            raise ValueError(f"dingtalk: unreadable cursor {text[:40]!r}")
        return cls(int(ms), frozenset(s for s in seen.split(".") if s))

    def passes(self, ms: int, fingerprint: str) -> bool:
        return ms > self.ms or (ms == self.ms and fingerprint not in self.seen)


@dataclass
class _Candidate:
    ms: int
    instance_id: str
    fingerprint: str
    record: dict[str, Any] | None


class Connector:
    """DingTalk approvals (see the module docstring)."""

    name = "dingtalk"
    limits = Limits(page_size=MAX_PAGE, batch_size=1)

    def __init__(self, settings: System) -> None:
        options = settings.options or {}
        auth = settings.auth or {}
        self.api = str(options.get("api", NEW_API))
        if self.api not in (NEW_API, OLD_API):
            raise ValueError(f"dingtalk: options.api must be '{NEW_API}' or '{OLD_API}'")
        host = reveal(settings.base_url) or DEFAULT_NEW_HOST
        if self.api == OLD_API:
            host = reveal(options.get("oapi_base_url")) or DEFAULT_OLD_HOST
        verify: bool | str = options.get("ca_file") or True
        self.client = DingTalkClient(host, str(reveal(auth.get("app_key", ""))), str(reveal(auth.get("app_secret", ""))),
                                     api=self.api, timeout=settings.timeout, verify=verify)
        self.kinds = _kinds(options)
        self.kinds_by_code = {kind.process_code: kind.name for kind in self.kinds.values()}
        self.page_size = max(1, min(MAX_PAGE, int(options.get("page_size", MAX_PAGE))))
        self.lookback_ms = int(options.get("lookback_days", 31)) * DAY_MS
        self.history_ms = int(options.get("history_days", 365)) * DAY_MS
        self.window_ms = int(options.get("window_days", 120)) * DAY_MS
        self.originator = options.get("originator_user_id")
        self.agent_id = options.get("agent_id")
        self._webhook = settings.webhook or {}
        self._app_key = str(reveal(auth.get("app_key", "")))
        self.log = log.bind(connector=self.name, system=settings.name, api=self.api)

    # --- reading -------------------------------------------------------------------------

    def _kind(self, obj: str) -> Kind:
        kind = self.kinds.get(obj)
        if kind is None:
            raise Rejected(f"dingtalk: no process code configured for approval kind '{obj}'", "UNKNOWN_KIND")
        return kind

    def _fetch(self, kind: Kind, instance_id: str) -> dict[str, Any] | None:
        instance = self.client.get_instance(instance_id)
        return None if instance is None else with_form(instance, kind.process_code)

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        kind = self._kind(obj)
        found = []
        for instance_id in dict.fromkeys(ids):
            record = self._fetch(kind, instance_id)
            if record is not None:
                found.append(record)
        return found

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        kind = self._kind(obj)
        try:
            cursor = Cursor.decode(since)
        except ValueError as exc:
            self.log.warning("dingtalk cursor unreadable; pulling everything", error=str(exc))
            cursor = None
        now = int(time.time() * 1000)
        start = max(0, cursor.ms - self.lookback_ms) if cursor else now - self.history_ms
        candidates = self._candidates(kind, start, now + 60_000, cursor)
        candidates.sort(key=lambda c: (c.ms, c.instance_id))
        self.log.info("dingtalk pull", kind=obj, changed=len(candidates), since=since is not None)
        seen_at: tuple[int, set[str]] = (cursor.ms, set(cursor.seen)) if cursor else (-1, set())
        for offset in range(0, len(candidates), self.page_size):
            records = []
            for candidate in candidates[offset : offset + self.page_size]:
                record = candidate.record or self._fetch(kind, candidate.instance_id)
                if record is None:
                    continue
                records.append(record)
                if candidate.ms != seen_at[0]:
                    seen_at = (candidate.ms, set())
                seen_at[1].add(candidate.fingerprint)
            if records:
                yield Page(records, Cursor(seen_at[0], frozenset(seen_at[1])).encode())

    def _candidates(self, kind: Kind, start: int, end: int, cursor: Cursor | None) -> list[_Candidate]:
        found: list[_Candidate] = []
        listed: set[str] = set()
        for instance_id in self._listed_ids(kind, start, end):
            if instance_id in listed:
                continue
            listed.add(instance_id)
            record = self._fetch(kind, instance_id)
            if record is None:
                continue
            ms, fingerprint = last_change_ms(record), fingerprint_of(record)
            if cursor is None or cursor.passes(ms, fingerprint):
                found.append(_Candidate(ms, instance_id, fingerprint, record if len(found) < _BUFFERED else None))
        return found

    def _listed_ids(self, kind: Kind, start: int, end: int) -> Iterator[str]:
        """Ids of the instances started in [start, end], window by window, page by page."""
        window_start = start
        while window_start < end:
            window_end = min(end, window_start + self.window_ms)
            token: int | None = 0
            while token is not None:
                ids, token = self.client.list_instance_ids(kind.process_code, window_start, window_end, token, MAX_PAGE)
                yield from ids
            window_start = window_end + 1

    # --- writing -------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        """One call per op. DingTalk takes no idempotency key for a new instance, so an outage
        after some ops were written returns their results and hands back only the rest
        (`finish_partial`): a retry of the whole push would start those approvals twice."""
        kind = self._kind(obj)
        results: list[WriteResult | None] = [None] * len(ops)
        for index, op in enumerate(ops):
            try:
                results[index] = self._apply(kind, op)
            except ConnectorError as exc:
                self.log.warning("dingtalk push interrupted", kind=kind.name, error=str(exc)[:300], left=len(ops) - index)
                return finish_partial(results, ops, exc)
        return [r for r in results if r is not None]

    def _apply(self, kind: Kind, op: WriteOp) -> WriteResult:
        try:
            if op.kind == OpKind.CREATE or (op.kind == OpKind.UPSERT and not op.external_id):
                if op.kind == OpKind.UPSERT:
                    # The engine upserts only what it has never written here. DingTalk cannot look an
                    # instance up by our key, so this starts one, carrying the key in its form (a
                    # pull recognises it); a crash between this call and the hub's commit is the one
                    # window in which a retry can start a second instance.
                    self.log.info("dingtalk upsert starts an instance", key=op.key)
                instance_id = self._create(kind, op.payload)
                return WriteResult(True, instance_id, created=True)
            return self._update(kind, op)
        except Rejected as exc:
            return WriteResult(False, op.external_id, error=exc)

    def _create(self, kind: Kind, payload: dict[str, Any]) -> str:
        originator = payload.get("originatorUserId") or kind.originator or self.originator
        if not originator:
            raise Rejected("dingtalk: no originatorUserId for the new instance (set applicant.user_id or "
                           "options originator_user_id)", "NO_ORIGINATOR")
        dept = payload.get("deptId", kind.dept_id)
        approvers = payload.get("approvers")
        instance_id = self.client.create_instance(
            kind.process_code, str(originator), form_values(payload.get("form") or {}, kind.fields),
            dept_id=int(dept) if dept not in (None, "") else None,
            approvers=[str(a) for a in approvers] if isinstance(approvers, list) else None,
            agent_id=int(self.agent_id) if self.agent_id not in (None, "") else None)
        self.log.info("dingtalk instance created", kind=kind.name, instance=instance_id)
        return instance_id

    def _update(self, kind: Kind, op: WriteOp) -> WriteResult:
        if not op.external_id:
            raise Rejected("dingtalk: an update needs the instance id", "NO_ID")
        if op.payload.get("status") == WITHDRAW:
            operator = op.payload.get("originatorUserId") or kind.originator or self.originator
            remark = str(op.payload.get("remark") or "withdrawn by synchub")
            self.client.terminate(op.external_id, str(operator) if operator else None, remark)
            self.log.info("dingtalk instance terminated", kind=kind.name, instance=op.external_id)
        else:
            self.log.info("dingtalk instance not editable; update ignored", kind=kind.name, instance=op.external_id)
        return WriteResult(True, op.external_id)

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        try:
            keys = self._callback_keys
        except (crypto.CryptoError, KeyError) as exc:
            self.log.error("dingtalk callback settings unusable", error=str(exc))
            return WebhookReply(500, b"callback settings unusable")
        now = int(time.time() * 1000)
        try:
            message = open_callback(request.query, request.body, keys, now)
        except CallbackRefused as exc:
            self.log.warning("dingtalk callback refused", status=exc.status, reason=exc.reason)
            return WebhookReply(exc.status, exc.reason.encode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - a webhook answer never raises
            self.log.error("dingtalk callback unreadable", error=type(exc).__name__)
            return WebhookReply(400, b"unreadable callback")
        event = approval_event(message, self.kinds_by_code)
        events = [event] if event is not None else []
        self.log.debug("dingtalk callback", event_type=message.get("EventType"), events=len(events))
        return WebhookReply(200, success_reply(keys, now), "application/json", events)

    @functools.cached_property
    def _callback_keys(self) -> CallbackKeys:
        """Worked out on the first callback and kept (settings that cannot be used raise each time)."""
        token = str(reveal(self._webhook["token"]))
        key = crypto.aes_key(str(reveal(self._webhook["aes_key"])))
        owner = str(reveal(self._webhook.get("owner_key") or self._app_key))
        max_age = int(self._webhook.get("max_age_seconds", 300))
        return CallbackKeys(token, key, owner, max_age * 1000)

    def close(self) -> None:
        self.client.close()


# --- records ---------------------------------------------------------------------------------


def _kinds(options: dict[str, Any]) -> dict[str, Kind]:
    kinds = {name: Kind(name, str(code)) for name, code in (options.get("process_codes") or {}).items()}
    for name, spec in (options.get("kinds") or {}).items():
        dept = spec.get("dept_id")
        kinds[name] = Kind(name, str(spec["process_code"]), dict(spec.get("fields") or {}),
                           spec.get("originator_user_id"), int(dept) if dept not in (None, "") else None)
    return kinds


def with_form(instance: dict[str, Any], process_code: str) -> dict[str, Any]:
    """The instance plus `processCode` and `form` ({label: value}) for the mappings."""
    form = {str(v.get("name")): v.get("value") for v in instance.get("formComponentValues") or [] if v.get("name")}
    return {**instance, "processCode": process_code, "form": form}


def form_values(form: dict[str, Any], types: dict[str, str]) -> list[dict[str, Any]]:
    """`{label: value}` as DingTalk's `formComponentValues`: every value as text (lists as JSON)."""
    values = []
    for name, value in form.items():
        if value is None or value == "":
            continue
        item: dict[str, Any] = {"name": name, "value": _form_text(value)}
        if name in types:
            item["componentType"] = types[name]
        values.append(item)
    return values


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    return str(value)


def parse_time_ms(value: Any) -> int | None:
    """DingTalk's '2024-05-01T08:30Z' (or with seconds) as epoch milliseconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def last_change_ms(record: dict[str, Any]) -> int:
    """The latest time the instance shows: created, finished, a task or an operation record."""
    times = [record.get("createTime"), record.get("finishTime")]
    for task in record.get("tasks") or []:
        times += [task.get("createTime"), task.get("finishTime")]
    times += [op.get("date") for op in record.get("operationRecords") or []]
    return max((ms for ms in map(parse_time_ms, times) if ms is not None), default=0)


def fingerprint_of(record: dict[str, Any]) -> str:
    """A short digest of an instance's id and changeable content (for cursors at one time)."""
    content = {k: record.get(k) for k in ("processInstanceId", "status", "result", "finishTime", "tasks",
                                          "operationRecords")}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


__all__ = ["Connector", "ConnectorError"]
