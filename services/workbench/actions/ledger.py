"""The crash-safety protocol of the workbench's actions, and its Redis side: :class:`ActionLedger`.

An action (requeue, retry, cancel) moves each entry ``parked`` ->
``claimed`` -> ``requeued``/``retried``/``cancelled`` in the parking store
(compare-and-set Lua scripts). Between the claim and the final state the
message is published; a crash there must neither lose nor duplicate it.
The protocol, per run of an action (``run_id``, a random hex string):

1. **Lease.** Before claiming anything the run writes a lease
   ``P:{D}:lease:<run_id>`` for every DLQ it touches (``SET ... PX 60 s``,
   value ``live:<owner>``) and refreshes it every 5 s while it runs. The
   lease says "this run is alive".
2. **Claim.** Each entry is claimed with action id ``<run_id>.<entry_id>``
   (unique per entry per action; the run id is recoverable from it). Losers
   are told the state and who holds it.
3. **Intent.** Before a window of messages is published, one script per DLQ
   writes each entry's :class:`PendingSend` - everything needed to publish
   the very same message again: exchange, routing key, attempt number,
   replacement body, the action id - into the entry's ``sending`` field,
   *only if* the run's lease still holds its token and the entry is still
   claimed with this action id. From then on the message is "maybe sent".
4. **Publish** with confirms and ``mandatory=True``.
5. **Finish.** Confirmed: ``complete`` (final state), recorded as the
   confirms arrive - what arrived during one Redis round trip goes in one
   script call - while the rest of the window is still in flight, so a crash
   leaves in doubt only what the broker had not confirmed. Returned, nacked or
   never handed to the broker: ``release`` (back to ``parked`` with the
   error). No answer (connection lost, time-out): left as it is - in doubt.
   The ``sending`` field is then removed (only if it is still this action's).
6. The lease is deleted when the run ends.

Claims, intents and finishes are one script call per window and DLQ
(``claim_many.lua``, ``finish_many.lua``): each runs the compare-and-set of the
store's one-entry scripts (``claim.lua``, ``finish.lua``: the same fields,
``inflight`` set and changes stream) inline, entry after entry; the arguments are
flat (no JSON to decode per window; a finish's few kinds passed once) and a window's
claims (or finishes) are one event of the changes stream. Where an entry's
intent does not depend on its stored message (requeue; cancel with an event)
steps 2 and 3 are one call: the window is claimed with its intents just before
it is published (nothing is claimed ahead), and a claim is made only while the
run's lease holds its token, as an intent is. A retry claims ahead (its attempt
number comes from the stored headers) and writes its intents before the publish.

What a crash leaves behind is settled by :mod:`services.workbench.actions.recovery`.

**A Redis failover** (or restart) while a run goes on does not stop it: every call of the
ledger rides through it (:func:`~services.links.redis_client.through_failover`: up to
:data:`~services.links.redis_client.FAILOVER_WAIT_S` waiting for the new master, then the
same call again), so the run goes on from where it was and sends nothing twice - nothing is
published before its intent call has answered, and a window whose intents are not written
is not published. Repeating a call is safe because a call whose reply was lost may have
run on the old master, on the new one, or nowhere, and every script here gives the same end
state run once or twice (each says why): the claim is "already ours", the intent writes
the same bytes again, the finish is a "repeated call" that starts the outcome and counts
the job once (``out_aid``), the lease scripts compare the token. A write the old master
acknowledged may still vanish with it (asynchronous replication): with the profile's
``redis_min_replicas = N`` (the store's ``min_replicas``) the claims, the intents and the
finishes each answer only once ``WAIT N`` has them on N replicas - a claim lost that way
would leave its entry unsent, a finish lost would leave it in doubt - and a short ``WAIT``
(a replica still following the new master) is waited out like the failover itself.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeVar, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.links.redis_client import execute_scripts, through_failover
from services.workbench import lua
from services.workbench import redis_layout as layout
from services.workbench.actions.names import Action
from services.workbench.actions.publisher import PublishItem
from services.workbench.codec import (
    RECORD_FIELDS,
    CodecError,
    MessageRecord,
    decode_props,
    decode_value,
)
from services.workbench.death_history import republish_properties
from services.workbench.durability import NotWritten, add_wait, check_wait
from services.workbench.model import ATTEMPT_HEADER, ClaimResult, EntryState
from services.workbench.republish import (
    ACTION_HEADER,
    DROPPED_HEADERS,
    REQUEUE_FIELD,
    requeue_headers,
    requeue_properties,
)
from services.workbench.store import CHANGES_MAXLEN, ParkingStore

T = TypeVar("T")

_STATE_BYTES: Final = {state: str(state).encode() for state in EntryState}

SENDING_FIELD: Final = "sending"
LEASE_TTL_MS: Final = 60_000
LEASE_REFRESH_S: Final = 5.0
FENCE_TTL_MS: Final = 7 * 24 * 3600 * 1000
OUTCOME_TIMEOUT_S: Final = 600.0
"""The default wait for a replayed entry's outcome (the profile's ``outcome_timeout_s``)."""


def action_id_for(run_id: str, entry_id: str) -> str:
    """The action id of one entry in one run: unique per entry per action."""
    return f"{run_id}.{entry_id}"


def run_of(action_id: str) -> str:
    """The run id inside an action id (the action id itself when it is not ours)."""
    run, sep, _ = action_id.partition(".")
    return run if sep else action_id


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- the intent


@dataclass(frozen=True, slots=True)
class PendingSend:
    """What a run is about to publish for one entry: enough to publish it again, unchanged.

    For requeue and retry the message is the parked record with the broker's
    dead-letter headers dropped (:data:`DROPPED_HEADERS`) and
    ``payops-action`` added (retry: also ``payops-attempt`` = ``attempt``);
    ``body`` replaces the record's body when the operator edited it. For
    cancel, ``body`` and ``properties`` are the ``payment.cancelled`` event.
    ``target`` names where the message ends up (the origin queue, or the
    cancel event's exchange) for people.
    """

    action: Action
    action_id: str
    exchange: str
    routing_key: str
    target: str
    operator: str
    host: str
    at_ms: int
    attempt: int | None = None
    delay_s: int = 0
    body: bytes | None = None
    properties: Mapping[str, Any] | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)

    def dumps(self) -> bytes:
        """``<action id>|<json>``: the action id first, so a script can compare it."""
        data: dict[str, Any] = {
            "action": self.action,
            "action_id": self.action_id,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "target": self.target,
            "operator": self.operator,
            "host": self.host,
            "at_ms": self.at_ms,
            "attempt": self.attempt,
            "delay_s": self.delay_s,
            "headers": dict(self.headers),
        }
        if self.body is not None:
            data["body"] = base64.b64encode(self.body).decode("ascii")
        if self.properties is not None:
            data["properties"] = dict(self.properties)
        return self.action_id.encode() + b"|" + orjson.dumps(data)

    @classmethod
    def loads(cls, raw: bytes) -> PendingSend:
        """The inverse of :meth:`dumps`; raises ``ValueError`` on anything else."""
        _, sep, blob = raw.partition(b"|")
        if not sep:
            raise ValueError("not a pending send")
        data = orjson.loads(blob)
        if not isinstance(data, dict) or data.get("action") not in tuple(Action):
            raise ValueError("not a pending send")
        body = data.get("body")
        return cls(
            action=Action(data["action"]),
            action_id=str(data["action_id"]),
            exchange=str(data["exchange"]),
            routing_key=str(data["routing_key"]),
            target=str(data.get("target") or ""),
            operator=str(data.get("operator") or ""),
            host=str(data.get("host") or ""),
            at_ms=int(data.get("at_ms") or 0),
            attempt=data.get("attempt"),
            delay_s=int(data.get("delay_s") or 0),
            body=base64.b64decode(body) if isinstance(body, str) else None,
            properties=data.get("properties"),
            headers=data.get("headers") or {},
        )

    @property
    def final_state(self) -> EntryState:
        return self.action.final_state


def publish_item(record: MessageRecord, pending: PendingSend) -> PublishItem:
    """The message a pending send publishes (the same every time it is built)."""
    if pending.action is Action.CANCEL:
        return PublishItem(
            exchange=pending.exchange,
            routing_key=pending.routing_key,
            body=pending.body or b"",
            action_id=pending.action_id,
            properties=dict(pending.properties or {}),
            headers={ACTION_HEADER: str(Action.CANCEL), **pending.headers},
        )
    headers = requeue_headers(record, str(pending.action))
    if pending.action is Action.RETRY and pending.attempt is not None:
        headers[ATTEMPT_HEADER] = pending.attempt
    headers.update(pending.headers)
    return PublishItem(
        exchange=pending.exchange,
        routing_key=pending.routing_key,
        body=pending.body if pending.body is not None else record.body,
        action_id=pending.action_id,
        properties=republish_properties(record),
        headers=headers,
        wire=record.wire,
    )


def stored_requeue_item(body: bytes, template: bytes, pending: PendingSend) -> PublishItem | None:
    """A requeue's message from the entry's body and its stored encoded properties
    (:mod:`services.workbench.republish`), the very bytes :func:`publish_item` gives;
    None when ``template`` is not usable (then the record is decoded)."""
    if pending.action is not Action.REQUEUE or pending.headers or pending.body is not None:
        return None
    encoded = requeue_properties(template, pending.action_id)
    if encoded is None:
        return None
    return PublishItem(
        exchange=pending.exchange,
        routing_key=pending.routing_key,
        body=body,
        action_id=pending.action_id,
        encoded=encoded,
    )


# --------------------------------------------------------------------------- Redis side


class Finish(NamedTuple):
    """One entry's end of an action: ``state`` None releases it with ``error``. A named
    tuple: one per entry, built several times faster than a frozen dataclass."""

    entry_id: str
    action_id: str
    state: EntryState | None
    detail: str = ""
    error: str = ""
    job: str = ""
    """The job the action belongs to (its outcome counters move with the entry's)."""
    sent_at_ms: int = 0
    """When the message was handed to the broker: the flow's events from then on count
    toward the entry's outcome (0: from the finish)."""
    delay_s: int = 0
    """A delayed retry's wait: its outcome may take that much longer."""


_RECORD_FIELDS: Final = tuple(name.encode() for name in RECORD_FIELDS)
_STORED_FIELDS: Final = (b"body", REQUEUE_FIELD.encode())
STORED_REQUEUE_KEY: Final = _STORED_FIELDS[1]
"""Where a claimed entry's fields hold its requeue's stored encoded properties."""


class ActionLedger:
    """The Redis side of the protocol (see the module docstring), batched per window.

    Claims and finishes are one script call per window running the store's
    compare-and-set inline (one round trip per window); the lease and intent
    scripts are this module's.
    """

    def __init__(self, store: ParkingStore, outcome_timeout_s: float = OUTCOME_TIMEOUT_S) -> None:
        self.store = store
        self.redis: aioredis.Redis = store.redis
        self.outcome_timeout_ms = round(outcome_timeout_s * 1000)
        """How long a replayed entry waits for its outcome before it is ``no_outcome``."""
        register = self.redis.register_script
        self._mark = register(lua.script("mark_sending"))
        self._unmark_sending = register(lua.script("unmark_sending"))
        self._claim_many = register(lua.script("claim_many", clock=True))
        self._finish_many = register(lua.script("finish_many", clock=True))
        self._refresh = register(lua.script("refresh_lease"))
        self._drop = register(lua.script("drop_lease"))
        self._fence = register(lua.script("fence"))
        self._take_over = register(lua.script("take_over"))

    async def _through(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, riding through a failover (see the module docstring): ``call``
        must be safe to repeat."""
        return await through_failover(
            call, what=f"the action's {what}", client=self.redis, also=(NotWritten,)
        )

    async def _confirmed(
        self, script: Any, keys: Sequence[str | bytes], args: list[Any], what: str
    ) -> Any:
        """One script call; with ``min_replicas`` it answers only once ``WAIT`` confirms
        its writes reached that many replicas (else :class:`NotWritten`)."""
        replicas = self.store.min_replicas
        if not replicas:
            return await script(keys=keys, args=args)

        async def build(pipe: Any) -> None:
            await script(keys=keys, args=args, client=pipe)
            add_wait(pipe, "write", replicas)

        replies = await execute_scripts(self.redis, build, [script])
        check_wait(replies, "write", replicas, what=what)
        return replies[0]

    def lease_key(self, dlq: str, run_id: str) -> str:
        return self.store.keys(dlq).lease(run_id)

    def _window_keys(self, dlq: str, entry_ids: Iterable[str]) -> list[str | bytes]:
        """KEYS of a claim or finish window: inflight, changes, then the entries (as
        bytes, built from one encoded prefix: ``keys.entry(entry_id)``)."""
        keys = self.store.keys(dlq)
        prefix = keys.entry("").encode()
        return [keys.inflight, keys.changes, *[prefix + e.encode() for e in entry_ids]]

    # ------------------------------------------------------------------ lease

    @staticmethod
    def lease_token(run_id: str, owner: Mapping[str, Any]) -> str:
        """The lease value of a run: ``live:`` and who runs it, where (machine and pid)."""
        data = {"run": run_id, "machine": socket.gethostname(), "pid": os.getpid(), **owner}
        return "live:" + orjson.dumps(data).decode()

    async def acquire(self, run_id: str, dlqs: Iterable[str], token: str) -> None:
        names = list(dlqs)

        async def call() -> None:  # SET: the same lease once or twice
            async with self.redis.pipeline(transaction=False) as pipe:
                for dlq in names:
                    pipe.set(self.lease_key(dlq, run_id), token, px=LEASE_TTL_MS)
                await pipe.execute()

        await self._through("lease", call)

    async def refresh(self, run_id: str, dlqs: Iterable[str], token: str) -> bool:
        """Extend the lease; False when it was lost (expired and fenced by a recovery)."""
        names = list(dlqs)

        async def build(pipe: Any) -> None:
            for dlq in names:
                keys = [self.lease_key(dlq, run_id)]
                await self._refresh(keys=keys, args=[token, LEASE_TTL_MS], client=pipe)

        async def call() -> list[Any]:  # PEXPIRE while the token holds: repeatable
            return await execute_scripts(self.redis, build, [self._refresh])

        replies = await self._through("lease refresh", call)
        return all(int(reply) == 1 for reply in replies)

    async def drop(self, run_id: str, dlqs: Iterable[str], token: str) -> None:
        names = list(dlqs)

        async def build(pipe: Any) -> None:
            for dlq in names:
                await self._drop(keys=[self.lease_key(dlq, run_id)], args=[token], client=pipe)

        async def call() -> None:  # DEL while the token holds: repeatable
            await execute_scripts(self.redis, build, [self._drop])

        await self._through("lease release", call)

    async def fence(
        self, dlq: str, run_id: str, by: str, *, ours_ended: bool = False
    ) -> tuple[bool, str]:
        """Fence a run that has no live lease: (True, previous value). A live lease
        gives (False, its value): the run is alive and must be left alone - unless its
        process is gone, or it is this process and ``ours_ended`` says its runs are over
        (an action stopped at once may not have dropped its lease)."""
        reply = await self._fence(
            keys=[self.lease_key(dlq, run_id)],
            args=["fenced:" + by, FENCE_TTL_MS],
        )
        fenced, value = bool(int(reply[0])), layout.text(reply[1]) or ""
        if not fenced and (owner_is_dead(value) or (ours_ended and owner_is_us(value))):
            # The run's process died on this machine: no need to wait for its lease
            # to expire. Fence it only if the lease is still the one seen.
            taken = await self._take_over(
                keys=[self.lease_key(dlq, run_id)], args=[value, "fenced:" + by, FENCE_TTL_MS]
            )
            return bool(int(taken)), value
        return fenced, value

    # ------------------------------------------------------------------ claims

    async def claim_and_fetch(
        self,
        dlq: str,
        claims: Sequence[tuple[str, str]],
        action: str,
        operator: str,
        *,
        run_id: str,
        token: str,
        intents: Sequence[PendingSend] | None = None,
        stored_requeue: bool = False,
    ) -> list[tuple[ClaimResult, dict[bytes, bytes]]] | None:
        """Claim ``(entry_id, action_id)`` pairs (parked -> claimed) and read each won
        entry's message fields (what :func:`decode_entry_record` needs): one script call,
        only while the run's lease holds ``token`` (None when it does not: nothing was
        claimed). With ``intents`` (one per claim) each claim writes its entry's intent in
        the same write: the claim and the intent step of the protocol in one call, for a
        window about to be published. With ``stored_requeue`` an entry that keeps its
        requeue's encoded properties gives ``body`` and those (:data:`REQUEUE_FIELD`)
        instead."""
        if not claims:
            return []
        keys = self._window_keys(dlq, [entry_id for entry_id, _ in claims])
        keys.insert(2, self.lease_key(dlq, run_id))
        args: list[Any] = [
            str(EntryState.PARKED),
            action,
            operator,
            CHANGES_MAXLEN,
            "1" if stored_requeue else "0",
            token,
        ]
        # Flat, as bytes already: the client passes bytes through without a look at each.
        if intents is None:
            for entry_id, action_id in claims:
                args += (entry_id.encode(), action_id.encode(), b"")
        else:
            for (entry_id, action_id), intent in zip(claims, intents, strict=True):
                args += (entry_id.encode(), action_id.encode(), intent.dumps())

        async def call() -> Any:  # claimed already: the same intents again, the same bytes
            try:
                return await self._confirmed(self._claim_many, keys, args, "the action's claims")
            except NotWritten:  # taken back while WAIT is short, as mark_sending does
                if intents is not None:
                    await self._unmark({dlq: intents}, {dlq: [i for i, _ in claims]})
                raise

        replies = await self._through("claims", call)
        if replies is None:
            return None
        out: list[tuple[ClaimResult, dict[bytes, bytes]]] = []
        claimed, by, doing = EntryState.CLAIMED, operator or None, action or None
        for (_, action_id), reply in zip(claims, replies, strict=True):
            if not int(reply[0]):  # {0, state, operator, action, action_id}
                out.append((layout.claim_result(reply), {}))
                continue
            # {1, body, rq} or {1, body, props, headers, exchange, rkey}: claimed by us
            names = _STORED_FIELDS if len(reply) == 1 + len(_STORED_FIELDS) else _RECORD_FIELDS
            raw = {k: v for k, v in zip(names, reply[1:], strict=False) if v is not None}
            out.append((ClaimResult(True, claimed, by, doing, action_id), raw))
        return out

    async def mark_sending(
        self,
        run_id: str,
        token: str,
        by_dlq: Mapping[str, Sequence[PendingSend]],
        entry_ids: Mapping[str, Sequence[str]],
    ) -> dict[str, list[bool]]:
        """Write the intents of one window (one script call per DLQ).

        With the store's ``min_replicas`` the calls and a ``WAIT`` go in one pipeline (on
        the connection that wrote): the intents count only once so many replicas have
        them, else :class:`~services.workbench.durability.NotWritten` (nothing is sent).
        """
        calls: list[tuple[str, list[str], list[Any]]] = []
        for dlq, pendings in by_dlq.items():
            if not pendings:
                continue
            keys = [self.lease_key(dlq, run_id)]
            keys.extend(self.store.entry_key(dlq, entry_id) for entry_id in entry_ids[dlq])
            items = [[p.action_id, p.dumps().decode("utf-8")] for p in pendings]
            calls.append((dlq, keys, [token, orjson.dumps(items)]))
        replicas = self.store.min_replicas

        async def call() -> list[Any]:  # the same intents again: the same bytes
            if not (replicas and calls):
                return [await self._mark(keys=keys, args=args) for _, keys, args in calls]

            async def build(pipe: Any) -> None:
                for _, keys, args in calls:
                    await self._mark(keys=keys, args=args, client=pipe)
                add_wait(pipe, "write", replicas)

            replies = await execute_scripts(self.redis, build, [self._mark])
            try:
                check_wait(replies, "write", replicas, what="the action's intents")
            except NotWritten:
                await self._unmark(by_dlq, entry_ids)
                raise
            return replies

        replies = await self._through("intents", call)
        return {
            dlq: [bool(int(v)) for v in reply]
            for (dlq, _, _), reply in zip(calls, replies, strict=True)
        }

    async def _unmark(
        self, by_dlq: Mapping[str, Sequence[PendingSend]], entry_ids: Mapping[str, Sequence[str]]
    ) -> None:
        """Drop the intents of a window that ``WAIT`` did not confirm, so that recovery
        releases its entries as never sent (they stay in doubt if this fails too)."""
        with contextlib.suppress(RedisError):
            for dlq, pendings in by_dlq.items():
                if pendings:
                    keys = [self.store.entry_key(dlq, entry_id) for entry_id in entry_ids[dlq]]
                    ids = orjson.dumps([p.action_id for p in pendings])
                    await self._unmark_sending(keys=keys, args=[ids])

    async def finish(self, dlq: str, finishes: Sequence[Finish]) -> list[ClaimResult]:
        """Complete or release entries (the store's script) and drop their intents:
        one script call."""
        if not finishes:
            return []
        where = self.store.keys(dlq)
        prefix = where.entry("").encode()
        keys: list[str | bytes] = [
            where.inflight,
            where.changes,
            where.outcomes_pending,
            where.outcomes_due,
            *[prefix + f.entry_id.encode() for f in finishes],
        ]
        at = now_ms()
        timeout_ms = self.outcome_timeout_ms
        # Flat: the few kinds of finish of a window (state, op, detail, error, job, sent at,
        # deadline) once each, then three arguments per entry, as bytes already.
        kinds: dict[tuple[EntryState | None, str, str, str, int, int], bytes] = {}
        kind_args: list[bytes] = []
        entry_args: list[bytes] = []
        for f in finishes:
            sent = f.sent_at_ms or at
            state = f.state
            kind = (state, f.detail, f.error, f.job, sent, f.delay_s)
            number = kinds.get(kind)
            if number is None:
                number = kinds[kind] = b"%d" % (len(kinds) + 1)
                kind_args += (
                    _STATE_BYTES[state or EntryState.PARKED],
                    b"complete" if state is not None else b"release",
                    f.detail.encode(),
                    f.error.encode(),
                    f.job.encode(),
                    b"%d" % sent,
                    b"%d" % (sent + f.delay_s * 1000 + timeout_ms),
                )
            entry_args += (f.entry_id.encode(), f.action_id.encode(), number)
        args: list[Any] = [CHANGES_MAXLEN, where.base, len(kinds), *kind_args, *entry_args]
        replies = await self._through(
            "finishes",
            lambda: self._confirmed(self._finish_many, keys, args, "the action's finishes"),
        )
        return finish_results(finishes, replies)

    async def fetch_record(self, dlq: str, entry_id: str) -> MessageRecord | None:
        """An entry's message, decoded as :func:`decode_entry_record` does (None: damaged
        or gone)."""
        key = self.store.entry_key(dlq, entry_id)
        values = cast(
            list[bytes | None],
            await self._through("read", lambda: self.redis.hmget(key, list(RECORD_FIELDS))),
        )
        raw = {k: v for k, v in zip(_RECORD_FIELDS, values, strict=True) if v is not None}
        return decode_entry_record(raw)

    async def pending_of(self, dlq: str, entry_ids: Sequence[str]) -> list[bytes | None]:
        async def call() -> list[bytes | None]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for entry_id in entry_ids:
                    pipe.hget(self.store.entry_key(dlq, entry_id), SENDING_FIELD)
                return cast(list[bytes | None], await pipe.execute())

        return await self._through("read", call)


def finish_results(finishes: Sequence[Finish], replies: Sequence[Any]) -> list[ClaimResult]:
    """``finish_many.lua``'s replies as results: a table as ``finish.lua``'s, or 1 for an
    entry finished as asked, whose holder is that of the table with ok 1 before it."""
    out: list[ClaimResult] = []
    held: ClaimResult | None = None
    for finish, reply in zip(finishes, replies, strict=True):
        if reply == 1 and held is not None:
            state = finish.state or EntryState.PARKED
            out.append(ClaimResult(True, state, held.operator, held.action, finish.action_id))
            continue
        result = layout.claim_result(reply)
        if result.ok:
            held = result
        out.append(result)
    return out


_UNREAD_HEADERS: Final = DROPPED_HEADERS - {"x-death"}


def decode_entry_record(raw: Mapping[bytes, bytes]) -> MessageRecord | None:
    """The message of an entry read with HGETALL, as it will be published: the broker's
    dead-letter headers (:data:`DROPPED_HEADERS`) but ``x-death`` (which the death history
    and ``expiration`` come from) are left out, unread. None when the
    stored message is damaged."""
    try:
        headers_raw = orjson.loads(raw[b"headers"])
        if not isinstance(headers_raw, dict):
            return None
        headers = {k: decode_value(v) for k, v in headers_raw.items() if k not in _UNREAD_HEADERS}
        properties, wire = decode_props(raw[b"props"])
        return MessageRecord(
            body=bytes(raw[b"body"]),
            properties=properties,
            headers=headers,
            exchange=bytes(raw.get(b"exchange", b"")).decode("utf-8", "surrogateescape"),
            routing_key=bytes(raw.get(b"rkey", b"")).decode("utf-8", "surrogateescape"),
            wire=wire,
        )
    except (KeyError, CodecError, orjson.JSONDecodeError):
        return None


def _owner(lease_value: str) -> dict[str, Any]:
    try:
        owner = orjson.loads(lease_value.removeprefix("live:"))
    except orjson.JSONDecodeError:
        return {}
    return owner if isinstance(owner, dict) else {}


def owner_is_us(lease_value: str) -> bool:
    """True when a live lease names this very process."""
    owner = _owner(lease_value) if lease_value.startswith("live:") else {}
    return owner.get("machine") == socket.gethostname() and owner.get("pid") == os.getpid()


def owner_is_dead(lease_value: str) -> bool:
    """True when a live lease names a process on this machine that no longer exists
    (a crash; the lease would otherwise hold for up to a minute)."""
    if not lease_value.startswith("live:"):
        return False
    owner = _owner(lease_value)
    pid = owner.get("pid")
    if owner.get("machine") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, but not ours to signal
        return False
    return False
