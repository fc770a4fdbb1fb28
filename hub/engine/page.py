"""One page of source records through map -> identity -> merge -> plan -> push -> record.

The work is split in three phases so that no store transaction stays open while a vendor is
called: `read` (one transaction: links, golden records, match keys; and, at its end,
`write_identity`), `push` (vendor calls only), `write` (one transaction: seen hashes, target
links and written hashes, jobs, counts, and, by the caller, the cursor). A crash between
`push` and `write` leaves the cursor where it was: the page is pulled again and the writes,
keyed by the canonical id, update instead of creating.

What the hub knows of a record's identity (its golden record, its source link, its match
keys) is committed before anything is pushed (`write_identity`). A crash after the push then
loses only the outcome, not who the record is: when the record the hub created in a target
comes back through the opposite flow before this page is redone, its key names a canonical
record the store knows, whose twin in the source is linked, so it is recognised instead of
being taken for a new customer and copied back, a duplicate on both sides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import ConnectorError, OpKind, Rejected, WriteOp, WriteResult
from hub.config import Endpoint, Flow
from hub.engine import retry
from hub.engine.hashing import record_hash
from hub.engine.identity import MatchKeys, Resolution, decide, new_canonical_id
from hub.engine.merge import Decision, flatten, merge, unflatten
from hub.engine.report import Counts, PlannedWrite
from hub.errors import FieldError
from hub.store import AuditEntry, Golden, Link, NewJob, Tx

log = structlog.get_logger()

RECORD_JOB = "record"


@dataclass
class Write:
    """A planned write of one canonical record to one target."""

    target: Endpoint
    op: WriteOp
    hash: str
    link: Link | None


# A vendor stamps its own write times: they differ in every echo and carry no new information.
TIMESTAMPS = frozenset({"created_at", "updated_at"})


@dataclass
class Item:
    """One source record on its way through the page."""

    raw: dict[str, Any]
    external_id: str
    seen: str
    link: Link | None = None
    canonical: dict[str, Any] | None = None
    canonical_id: str | None = None
    how: str = ""
    outcome: str = ""  # set once the record needs no further work: unchanged, echo, dead, waiting
    reason: str = ""
    golden: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    version: int = 0
    golden_changed: bool = False
    decisions: list[Decision] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    done_targets: dict[str, tuple[str, str]] = field(default_factory=dict)  # system -> (external id, hash)
    parked: list[str] = field(default_factory=list)
    setbacks: int = 0  # targets that dead-lettered or parked this record
    awaits_reference: bool = False  # parked because a `ref` has no id on some side yet

    @property
    def live(self) -> bool:
        return not self.outcome


@dataclass
class PageContext:
    """What a page needs besides its records: the flow, connectors, policies and the clock."""

    flow: Flow
    connector_for: Callable[[str], Any]
    retry_policy: retry.RetryPolicy
    run_id: int | None
    force: bool = False  # reprocess records even if unchanged since last seen (replays, record jobs)
    dry_run: bool = False
    index_only: bool = False  # learn identities and golden records; write to no target
    requeue: bool = True  # queue a record job for each parked record (False: the caller is that job, and retries)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    on_retry: Callable[[str, BaseException], None] | None = None


class PageWork:
    """Carries one page through the three phases; `counts` and `planned` hold the outcome."""

    def __init__(self, ctx: PageContext, records: list[dict[str, Any]]) -> None:
        self.ctx = ctx
        self.flow = ctx.flow
        self.source = ctx.flow.source
        self.counts = Counts(pulled=len(records))
        self.planned: list[PlannedWrite] = []
        self.items: list[Item] = []
        self.new_match_keys: list[tuple[str, str, str]] = []
        self.jobs: list[NewJob] = []
        self.dead: list[tuple[NewJob, str]] = []
        self.notes: list[str] = []  # why records were parked, for the run report
        self.unfinished: dict[str, str] = {}  # external id -> why it was parked
        self.audit: list[AuditEntry] = []
        self.log = log.bind(flow=self.flow.name, run_id=ctx.run_id, system=self.source.system)
        self._ingest(records)

    # --- phase 1: read ---------------------------------------------------------------------

    def _ingest(self, records: list[dict[str, Any]]) -> None:
        mapping = self.source.mapping
        seen_ids: set[str] = set()
        for raw in records:
            external = mapping.external_id(raw)
            if external is None or external == "":
                self.counts.dead += 1
                self._dead_job(None, raw, f"record has no id at '{mapping.id_path}'")
                continue
            external = str(external)
            if external in seen_ids:  # a page can repeat a record; the later copy wins
                self.items = [i for i in self.items if i.external_id != external]
                self.counts.pulled -= 1
            seen_ids.add(external)
            self.items.append(Item(raw, external, record_hash(raw, mapping.fingerprint)))

    def read(self, tx: Tx) -> None:
        links = tx.links_by_external(self.source.system, self.source.object, [i.external_id for i in self.items],
                                     self.flow.entity)
        for item in self.items:
            item.link = links.get(item.external_id)
            if item.link is not None and item.link.seen_hash == item.seen and not self.ctx.force:
                item.outcome = "unchanged"
                self.counts.unchanged += 1
        self._map_inbound(tx)
        self._resolve(tx)
        self._skip_echoes(tx)
        self._merge(tx)
        if not self.ctx.index_only:
            self._plan(tx)

    def _map_inbound(self, tx: Tx) -> None:
        resolver = LinkResolver(tx, self.source.system, inbound=True)
        mapping = self.source.mapping
        for item in self._live():
            if not mapping.takes(item.raw):
                item.outcome = "skipped"
                self.counts.skipped += 1
                continue
            result = mapping.to_canonical(item.raw, resolver)
            if result.errors:
                self._fail(item, result.errors)
            else:
                item.canonical = result.value

    def _resolve(self, tx: Tx) -> None:
        pending: list[Item] = []
        for item in self._live():
            if item.link is not None:
                item.canonical_id, item.how = item.link.canonical_id, "link"
            else:
                pending.append(item)
        if not pending:
            return
        keyed = [(i, self.source.mapping.hub_key(i.raw)) for i in pending]
        claimed = tx.golden_get([str(k) for _, k in keyed if k])
        matcher = MatchKeys.of(self.flow.match)
        values_of = {id(item): matcher.values(item.canonical or {}) for item in pending}
        wanted: dict[str, set[str]] = {}
        for item in pending:
            for key, value in values_of[id(item)]:
                wanted.setdefault(key, set()).add(value)
        known = {key: tx.match_lookup(self.flow.entity, key, sorted(values)) for key, values in wanted.items()}
        candidates = sorted({c for by_value in known.values() for ids in by_value.values() for c in ids})
        # A canonical record has at most one twin per system object: one that already has a
        # twin here is not a candidate (two such records are duplicates in the source).
        taken = set(tx.links_by_canonical(self.source.system, self.source.object, candidates, self.flow.entity))
        fresh: dict[tuple[str, str], str] = {}  # match keys of records new in this very page
        for item, hub_key in keyed:
            self._identify(item, hub_key, claimed, values_of[id(item)], known, fresh, taken)

    def _identify(self, item: Item, hub_key: Any, claimed: dict[str, Golden], values: list[tuple[str, str]],
                  known: dict[str, dict[str, list[str]]], fresh: dict[tuple[str, str], str], taken: set[str]) -> None:
        if hub_key and str(hub_key) in claimed and str(hub_key) not in taken:
            item.canonical_id, item.how = str(hub_key), "hub_key"
            taken.add(item.canonical_id)
            return
        hits = []
        for key, value in values:
            ids = [*known.get(key, {}).get(value, []), *([fresh[(key, value)]] if (key, value) in fresh else [])]
            hits.append((key, value, [c for c in ids if c not in taken]))
        resolution = decide(hits) or Resolution(
            new_canonical_id(self.flow.entity, self.source.system, self.source.object, item.external_id), "new")
        if resolution.canonical_id is None:
            self.counts.dead += 1
            self._dead_job(item, item.raw, f"ambiguous match, nothing linked: {resolution.detail}")
            item.outcome = "dead"
            return
        item.canonical_id, item.how = resolution.canonical_id, resolution.how
        taken.add(resolution.canonical_id)
        for key, value in values:
            fresh.setdefault((key, value), resolution.canonical_id)
            self.new_match_keys.append((key, value, resolution.canonical_id))

    def _skip_echoes(self, tx: Tx) -> None:
        """A record carrying exactly what its system is known to hold is our own write coming back
        (or a record re-read unchanged): it brings nothing new.

        "What its system holds" is judged through the outbound mapping, which sees only the
        fields the hub writes there (`Link.written_hash`, see `write`). A change to a field the
        hub never writes to this system (an ERP-owned credit limit) is invisible to that
        projection, so a record whose projection matches is an echo only if it also brings no
        new value for such a field. And it is skipped only if every target of the flow already
        holds the golden record: a system that lost a conflict when its record was merged (a
        CRM whose credit limit the ERP owns) learns the golden value from the flow that writes
        to it, and that flow may see nothing but echoes of what the hub wrote on the other side.
        """
        mapping = self.source.mapping
        if mapping.outbound is None:
            return
        candidates: list[tuple[Item, str]] = []  # with the hash of the record's projection (= what we wrote)
        for item in self._live():
            if item.link is None or not item.link.written_hash or item.canonical is None:
                continue
            back = mapping.to_vendor({**item.canonical, "id": item.canonical_id})
            if not back.errors and record_hash(back.value) == item.link.written_hash:
                candidates.append((item, item.link.written_hash))
        if not candidates:
            return
        goldens = tx.golden_get([i.canonical_id for i, _ in candidates if i.canonical_id])
        echoes = [(item, goldens[item.canonical_id or ""]) for item, projected in candidates
                  if item.canonical_id in goldens and not self._brings_unwritten_change(
                      item, goldens[item.canonical_id or ""].data, projected)]
        behind = self._targets_behind(tx, echoes)
        for item, projected in candidates:
            if item.canonical_id not in goldens:
                item.outcome = "echo"
                self.counts.skipped_echo += 1
        for item, _ in echoes:
            if item.canonical_id not in behind:
                item.outcome = "echo"
                self.counts.skipped_echo += 1

    def _targets_behind(self, tx: Tx, echoes: list[tuple[Item, Golden]]) -> set[str]:
        """Canonical ids of echoes whose golden record some target of the flow does not hold:
        no link in a target that may be created in, or a projection that differs from what
        the target is known to hold."""
        behind: set[str] = set()
        if not echoes or self.ctx.index_only:
            return behind
        ids = [item.canonical_id or "" for item, _ in echoes]
        for target in self.flow.targets:
            links = tx.links_by_canonical(target.system, target.object, ids, self.flow.entity)
            resolver = LinkResolver(tx, target.system, inbound=False)
            for item, golden in echoes:
                canonical_id = item.canonical_id or ""
                link = links.get(canonical_id)
                if link is None:
                    if target.create:
                        behind.add(canonical_id)
                    continue
                result = target.mapping.to_vendor({**golden.data, "id": canonical_id}, resolver)
                if not result.errors and record_hash(result.value) != link.written_hash:
                    behind.add(canonical_id)
        return behind

    def _brings_unwritten_change(self, item: Item, golden: dict[str, Any], base: str) -> bool:
        """Whether the record differs from the golden one in a field the outbound mapping ignores
        (`base` is the hash of the record's own outbound projection)."""
        mapping = self.source.mapping
        mine, known = flatten(item.canonical or {}), flatten(golden)
        for path, value in mine.items():
            if path in TIMESTAMPS or known.get(path) == value:
                continue
            probe = unflatten({**mine, path: known.get(path)})
            if record_hash(mapping.to_vendor({**probe, "id": item.canonical_id}).value) == base:
                return True  # the outbound projection cannot see this field: a real change
        return False

    def _merge(self, tx: Tx) -> None:
        live = [i for i in self._live() if i.canonical_id]
        goldens = tx.golden_get([i.canonical_id for i in live if i.canonical_id])
        for item in live:
            before = goldens.get(item.canonical_id or "")
            data, meta, decisions = merge(before.data if before else None, before.meta if before else None,
                                          item.canonical or {}, self.source.system, self.flow.conflict)
            item.golden, item.meta, item.decisions = data, meta, decisions
            item.version = before.version if before else 0
            item.golden_changed = before is None or data != before.data or meta != before.meta
            for decision in decisions:
                self.log.info("conflict decided", canonical_id=item.canonical_id, **decision.as_dict())

    def _plan(self, tx: Tx) -> None:
        live = [i for i in self._live() if i.golden is not None]
        for target in self.flow.targets:
            links = tx.links_by_canonical(target.system, target.object, [i.canonical_id for i in live if i.canonical_id],
                                          self.flow.entity)
            resolver = LinkResolver(tx, target.system, inbound=False)
            for item in live:
                self._plan_one(item, target, links.get(item.canonical_id or ""), resolver)

    def _plan_one(self, item: Item, target: Endpoint, link: Link | None, resolver: LinkResolver) -> None:
        if link is None and not target.create:
            return  # an update-only target: this record has no counterpart there to update
        record = {**(item.golden or {}), "id": item.canonical_id}
        result = target.mapping.to_vendor(record, resolver)
        if any(e.code == "unresolved_ref" for e in result.errors):
            item.awaits_reference = True
            item.parked.append(f"{target.system}: {'; '.join(str(e) for e in result.errors)}")
            return
        if result.errors:
            self._target_dead(item, target, "; ".join(str(e) for e in result.errors))
            return
        digest = record_hash(result.value)
        if link is not None and link.written_hash == digest:
            return
        key_field = target.mapping.key_path
        if link is not None:
            op = WriteOp(OpKind.UPDATE, result.value, item.canonical_id or "", link.external_id, key_field)
        elif key_field:
            op = WriteOp(OpKind.UPSERT, result.value, item.canonical_id or "", key_field=key_field)
        else:
            op = WriteOp(OpKind.CREATE, result.value, item.canonical_id or "")
        item.writes.append(Write(target, op, digest, link))

    # --- phase 2: push ---------------------------------------------------------------------

    def push(self) -> None:
        """Send the planned writes, one batch per target; results are attached to the items."""
        for target in self.flow.targets:
            batch = [(item, w) for item in self._live() for w in item.writes if w.target is target]
            if not batch:
                continue
            if self.ctx.dry_run:
                self._plan_only(target, batch)
                continue
            self._push_target(target, batch)

    def _push_target(self, target: Endpoint, batch: list[tuple[Item, Write]]) -> None:
        """Push the batch; when a push was cut short after it wrote some records (a connector's
        `finish_partial`), push the rest again at once, after the vendor's Retry-After.

        A vendor push is often many calls (Odoo writes each record with its own call), so with
        a steady rate of faults a whole push rarely gets through, and retrying it whole rewrites
        what was written. Each round writes something (a round that writes nothing raises, and
        `retry.call` retries it as a whole), so this ends; what a push cannot write at all
        after its retries is parked in the queue."""
        pending = batch
        while pending:
            results = self._push_round(target, pending)
            if results is None:
                return
            unfinished: list[tuple[Item, Write, WriteResult]] = []
            for (item, write), outcome in zip(pending, results):
                if _resumable(outcome):
                    unfinished.append((item, write, outcome))
                else:
                    self._record_result(item, write, outcome)
            if len(unfinished) == len(pending):  # nothing written this round: the vendor is down
                for item, write, outcome in unfinished:
                    self._record_result(item, write, outcome)
                return
            if unfinished:
                error = next(o.error for _, _, o in unfinished if o.error is not None)
                self.log.info("push interrupted after writing some records, pushing the rest", target=target.system,
                              done=len(pending) - len(unfinished), left=len(unfinished), error=str(error)[:200])
                if self.ctx.on_retry is not None:
                    self.ctx.on_retry(target.system, error)
                time.sleep(max(float(getattr(error, "retry_after", None) or 0.0), self.ctx.retry_policy.initial))
            pending = [(item, write) for item, write, _ in unfinished]

    def _push_round(self, target: Endpoint, batch: list[tuple[Item, Write]]) -> list[WriteResult] | None:
        """One push of the batch, retried whole while nothing is written; None when parked."""
        connector = self.ctx.connector_for(target.system)
        ops = [w.op for _, w in batch]
        on_retry = (lambda exc: self.ctx.on_retry(target.system, exc)) if self.ctx.on_retry else None
        try:
            results = retry.call(lambda: connector.push(target.object, ops), self.ctx.retry_policy,
                                 f"{target.system}.push", on_retry)
        except Rejected as exc:
            results = [WriteResult(False, error=exc) for _ in ops]
        except ConnectorError as exc:
            self.log.warning("target unavailable, records parked for retry", target=target.system, error=str(exc)[:300])
            for item, _ in batch:
                item.parked.append(f"{target.system}: {type(exc).__name__}: {exc}")
            return None
        if len(results) != len(ops):
            raise ConnectorError(f"{target.system} connector returned {len(results)} results for {len(ops)} writes")
        return results

    def _record_result(self, item: Item, write: Write, outcome: WriteResult) -> None:
        target = write.target
        if outcome.ok and outcome.external_id:
            item.done_targets[target.system] = (str(outcome.external_id), write.hash)
            created = write.link is None and (outcome.created or write.op.kind == OpKind.CREATE)
            if created:
                self.counts.created += 1
            else:
                self.counts.updated += 1
        elif isinstance(outcome.error, Rejected) or (outcome.error is not None and not outcome.error.retryable):
            self._target_dead(item, target, f"rejected by {target.system}: {outcome.error}")
        else:
            item.parked.append(f"{target.system}: {outcome.error or 'no id returned'}")

    def _plan_only(self, target: Endpoint, batch: list[tuple[Item, Write]]) -> None:
        current = self._current_target_records(target, [w.link.external_id for _, w in batch if w.link])
        for item, write in batch:
            before = current.get(write.link.external_id, {}) if write.link else {}
            diff = _diff(before, write.op.payload)
            self.planned.append(PlannedWrite(target.system, write.op.kind.value, item.canonical_id or "",
                                             write.link.external_id if write.link else None, diff,
                                             write.op.payload))
            if write.link is None:
                self.counts.created += 1
            else:
                self.counts.updated += 1

    def _current_target_records(self, target: Endpoint, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        connector = self.ctx.connector_for(target.system)
        records = retry.call(lambda: connector.get(target.object, ids), self.ctx.retry_policy, f"{target.system}.get")
        return {str(target.mapping.external_id(r)): r for r in records}

    # --- phase 3: write --------------------------------------------------------------------

    def write_identity(self, tx: Tx) -> None:
        """Golden records, the source records' links and new match keys, in the read's
        transaction, before any vendor is written (see the module docstring). A new link has no
        seen hash yet, so that the record is synced again if the page's outcome is lost."""
        goldens, links = [], []
        held = self._held(tx)
        for item in self.items:
            if item.canonical_id and item.golden is not None and item.golden_changed:
                goldens.append(Golden(item.canonical_id, self.flow.entity, item.golden, item.meta or {},
                                      record_hash(item.golden), item.version))
            if item.canonical_id and item.outcome not in ("dead", "unchanged"):
                written = (item.link.written_hash if item.link else None) or held.get(item.external_id)
                links.append(Link(self.flow.entity, item.canonical_id, self.source.system, self.source.object,
                                  item.external_id, None, written))
        tx.golden_put(goldens, versions=False)
        tx.upsert_links(links)
        tx.match_put(self.flow.entity, self.new_match_keys)

    def write(self, tx: Tx) -> None:
        """Record what the page did, in the caller's transaction (with the cursor)."""
        links = []
        targets = {t.system: t for t in self.flow.targets}
        for item in self.items:
            if item.canonical_id and item.outcome not in ("dead", "unchanged") and not self.ctx.index_only:
                links.append(Link(self.flow.entity, item.canonical_id, self.source.system, self.source.object,
                                  item.external_id, item.seen, None))  # indexed records still sync on the next run
            for system, (external_id, digest) in item.done_targets.items():
                links.append(Link(self.flow.entity, item.canonical_id or "", system, targets[system].object, external_id,
                                  None, digest))
            if item.parked and item.live:
                self._park(item)
            for decision in item.decisions:
                self.audit.append(AuditEntry("engine", "conflict", f"{self.flow.entity}/{item.canonical_id}",
                                             {**decision.as_dict(), "flow": self.flow.name}, self.ctx.run_id))
        self.counts.unchanged += sum(1 for i in self.items if i.live and i.canonical_id and not i.writes and not i.setbacks)
        tx.upsert_links(links)
        if self.jobs:
            tx.enqueue(self.jobs)
        if self.dead:
            tx.bury(self.dead)
        if self.audit:
            tx.audit(self.audit)

    def _held(self, tx: Tx) -> dict[str, str]:
        """External id -> hash of the outbound projection of each record as first read, for
        links that have no `written_hash` yet.

        A link's `written_hash` is what the hub knows its system to hold, in the terms of the
        outbound mapping: what it last wrote there, or, for a record it never wrote, the record
        as the hub first read it. Without the latter, a record the hub only ever read (a
        customer the ERP had before the hub came) looks unknown to every flow writing to its
        system, and is rewritten there with its own values, one vendor call each. Only the
        first read counts: once the hub has written a record, what it wrote is the reference,
        since not every mapping reads back exactly what it writes (Odoo order lines come back
        without their product code).
        """
        mapping = self.source.mapping
        if mapping.outbound is None:
            return {}
        resolver = LinkResolver(tx, self.source.system, inbound=False)
        held: dict[str, str] = {}
        for item in self.items:
            if item.canonical is None or not item.canonical_id or item.outcome in ("dead", "unchanged"):
                continue
            if item.link is not None and item.link.written_hash:
                continue
            projection = mapping.to_vendor({**item.canonical, "id": item.canonical_id}, resolver)
            if not projection.errors:
                held[item.external_id] = record_hash(projection.value)
        return held

    # --- helpers ---------------------------------------------------------------------------

    def _live(self) -> list[Item]:
        return [i for i in self.items if i.live]

    def _fail(self, item: Item, errors: list[FieldError]) -> None:
        if all(e.code == "unresolved_ref" for e in errors):
            item.parked.append("; ".join(str(e) for e in errors))
            item.outcome = "waiting"
            self._park(item)
            return
        item.outcome = "dead"
        self.counts.dead += 1
        self._dead_job(item, item.raw, "; ".join(str(e) for e in errors), [e.as_dict() for e in errors])

    def _target_dead(self, item: Item, target: Endpoint, reason: str) -> None:
        item.setbacks += 1
        self.counts.dead += 1
        self._dead_job(item, item.raw, reason, target=target.system)

    def _park(self, item: Item) -> None:
        """Queue the record for a later attempt (a missing reference, a vendor that stayed down)."""
        reason = "; ".join(item.parked)
        self.notes.append(f"{item.external_id}: {reason}")
        self.unfinished[item.external_id] = reason
        item.setbacks += 1
        if item.outcome == "waiting" or item.awaits_reference:
            self.counts.waiting += 1
        else:
            self.counts.failed += 1
        if not self.ctx.requeue:
            return
        delay = timedelta(seconds=30)
        self.jobs.append(NewJob(
            kind=RECORD_JOB, flow=self.flow.name,
            payload={"flow": self.flow.name, "object": self.source.object, "external_id": item.external_id,
                     "reason": reason},
            max_attempts=self.flow.attempts, not_before=self.ctx.now() + delay,
            dedupe_key=f"{RECORD_JOB}:{self.flow.name}:{item.external_id}",
        ))
        item.parked = []

    def _dead_job(self, item: Item | None, raw: dict[str, Any], reason: str,
                  errors: list[dict[str, str]] | None = None, target: str | None = None) -> None:
        external_id = item.external_id if item else None
        self.log.warning("record dead-lettered", external_id=external_id, canonical_id=item.canonical_id if item else None,
                         target=target, reason=reason[:500])
        job = NewJob(
            kind=RECORD_JOB, flow=self.flow.name,
            payload={"flow": self.flow.name, "object": self.source.object, "external_id": external_id,
                     "target": target, "errors": errors or [], "record": raw},
            max_attempts=self.flow.attempts,
            dedupe_key=f"dead:{self.flow.name}:{external_id}:{target or ''}" if external_id else None,
        )
        self.dead.append((job, reason))


class LinkResolver:
    """Resolves `ref` rules through the links table, caching per page."""

    def __init__(self, tx: Tx, system: str, inbound: bool) -> None:
        self.tx = tx
        self.system = system
        self.inbound = inbound
        self.cache: dict[tuple[str, str], str | None] = {}

    def resolve(self, entity: str, value: Any) -> Any | None:
        key = (entity, str(value))
        if key not in self.cache:
            if self.inbound:
                found = self.tx.links_for_entity_external(self.system, entity, [str(value)])
                link = found.get(str(value))
                self.cache[key] = link.canonical_id if link else None
            else:
                found = self.tx.links_for_entity(self.system, entity, [str(value)])
                link = found.get(str(value))
                self.cache[key] = link.external_id if link else None
        return self.cache[key]


def _resumable(outcome: WriteResult) -> bool:
    """A write not done because its push was cut short (a retryable error of its own)."""
    error = outcome.error
    return not outcome.ok and error is not None and error.retryable and not isinstance(error, Rejected)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    old, new = flatten(before), flatten(after)
    return {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
