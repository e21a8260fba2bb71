"""The rows of entries named by id, read whole (an action's target given as ids)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from services.config import FieldPaths
from services.workbench.codec import CodecError, MessageRecord, decode_record
from services.workbench.model import EntryState, EntrySummary, summarize
from services.workbench.store import ParkingStore, entry_id_time_ms


async def rows_by_id(
    store: ParkingStore, fields: FieldPaths, dlqs: Sequence[str], entry_ids: Iterable[str]
) -> tuple[list[EntrySummary], list[str]]:
    """The rows of ``entry_ids`` (looked up in ``dlqs``, read whole), and the ids that do
    not exist."""
    ids = list(dict.fromkeys(entry_ids))
    if not ids:
        return [], []
    names = list(dlqs)
    found: dict[str, EntrySummary] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        pipe = store.redis.pipeline(transaction=False)
        for entry_id in chunk:
            for dlq in names:
                pipe.exists(store.entry_key(dlq, entry_id))
        exists = await pipe.execute()
        located: list[tuple[str, str]] = []
        for i, entry_id in enumerate(chunk):
            for j, dlq in enumerate(names):
                if exists[i * len(names) + j]:
                    located.append((dlq, entry_id))
                    break
        pipe = store.redis.pipeline(transaction=False)
        for dlq, entry_id in located:
            pipe.hgetall(store.entry_key(dlq, entry_id))
        raws = await pipe.execute()
        for (dlq, entry_id), raw in zip(located, raws, strict=True):
            summary = summary_of(dlq, entry_id, cast(dict[bytes, bytes], raw), fields)
            if summary is not None:
                found[entry_id] = summary
    return [found[i] for i in ids if i in found], [i for i in ids if i not in found]


def summary_of(
    dlq: str, entry_id: str, raw: dict[bytes, bytes], fields: FieldPaths
) -> EntrySummary | None:
    """An entry's row from its whole hash (None when it is gone)."""
    if not raw:
        return None
    try:
        record = decode_record(raw)
    except CodecError:
        record = MessageRecord(body=raw.get(b"body", b""))
    try:
        state = EntryState((raw.get(b"state") or b"parked").decode())
    except ValueError:
        state = EntryState.PARKED
    operator = (raw.get(b"operator") or b"").decode("utf-8", "replace") or None
    try:
        parked_at = int(raw.get(b"parked_at") or 0)
    except ValueError:
        parked_at = 0
    return summarize(
        dlq,
        entry_id,
        record,
        fields,
        parked_at or entry_id_time_ms(entry_id) or 0,
        state=state,
        last_operator=operator,
    )
