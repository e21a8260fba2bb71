"""The bundle's packing: members deflated by ISA-L (isal), read back by zipfile intact."""

from __future__ import annotations

import asyncio
import random
import zipfile
import zlib
from pathlib import Path

from isal import isal_zlib

from services.snapshot.bundle import PACK_CHUNK, PACK_LEVEL, Member, pack


def member_text(rows: int) -> bytes:
    """JSON-like lines, compressible as a bundle's are (several deflate chunks)."""
    rng = random.Random(7)
    reasons = ("rejected", "expired", "maxlen")
    lines = (
        f'{{"entry_id": "{rng.getrandbits(64):016x}", "amount": "{rng.randint(1, 99999) / 100}",'
        f' "reason": "{rng.choice(reasons)}", "note": "{"x" * rng.randint(0, 80)}"}}\n'
        for _ in range(rows)
    )
    return "".join(lines).encode()


def raw_deflate(data: bytes, module: object) -> bytes:
    """``data`` deflated (raw stream, level PACK_LEVEL) in pack's chunks by ``module``."""
    compressor = module.compressobj(PACK_LEVEL, module.DEFLATED, -15)  # type: ignore[attr-defined]
    out = [compressor.compress(data[i : i + PACK_CHUNK]) for i in range(0, len(data), PACK_CHUNK)]
    return b"".join(out) + compressor.flush()


async def test_members_are_deflated_by_isal_and_read_back_intact(tmp_path: Path) -> None:
    big, small = member_text(40_000), b"tiny\r\n"
    assert len(big) > 2 * PACK_CHUNK
    members = []
    for name, data in (("failed_payments.jsonl", big), ("charts/latency.png", small)):
        member = Member(tmp_path, name)
        member.write(data)
        member.close()
        members.append(member)
    packed = tmp_path / "bundle.zip.partial"
    seen: list[tuple[int, int]] = []

    async def tick() -> None:
        await asyncio.sleep(0)

    await pack(packed, members, 1_765_000_000, progress=lambda d, t: seen.append((d, t)), tick=tick)

    with zipfile.ZipFile(packed) as archive:
        assert archive.testzip() is None  # every member's CRC checks out
        assert archive.read("failed_payments.jsonl") == big
        assert archive.read("charts/latency.png") == small
        info = archive.getinfo("failed_payments.jsonl")
        assert info.compress_type == zipfile.ZIP_DEFLATED
    with packed.open("rb") as raw:  # the member's stored bytes: after its local header
        raw.seek(info.header_offset + 26)
        name_length, extra_length = (int.from_bytes(raw.read(2), "little") for _ in range(2))
        raw.seek(name_length + extra_length, 1)
        stored = raw.read(info.compress_size)
    assert stored == raw_deflate(big, isal_zlib)
    assert stored != raw_deflate(big, zlib)  # zipfile's own deflate would have written these
    assert seen[-1] == (len(big) + len(small),) * 2
    assert not any(m.path.exists() for m in members)  # each member's file deleted once packed
