"""``payops dlq list``: every column lines up under its title, whatever the widths of
payment ids and merchants (the trial: 20-character ids and 17-character merchants pushed
the rest of their rows out of line)."""

from __future__ import annotations

import dataclasses

import pytest

from app.cli.dlq_output import _COLUMNS, MAX_CELL_CHARS, print_table
from tests.helpers.summaries import realistic_summaries


def test_columns_line_up_under_their_titles(capsys: pytest.CaptureFixture[str]) -> None:
    rows = realistic_summaries(12, seed=5)
    rows[0] = dataclasses.replace(
        rows[0], payment_id="pay_17d5570756950439", merchant="Northwind Traders"
    )
    rows[1] = dataclasses.replace(rows[1], merchant="M" * 90)  # cut, not a wall of text
    print_table(rows)
    lines = capsys.readouterr().out.splitlines()
    header, body = lines[0], lines[1:]
    starts = [header.index(title) for title, _ in _COLUMNS]
    assert len(body) == 12
    for line in body:
        for start in [s for s in starts[1:] if s < len(line)]:  # an empty last cell: cut
            # Each column starts right after two spaces of the one before it.
            assert line[start - 2 : start] == "  " and line[start] != " ", (line, start)
    assert "pay_17d5570756950439" in body[0] and "Northwind Traders" in body[0]
    assert "M" * (MAX_CELL_CHARS - 1) + "…" in body[1] and "M" * MAX_CELL_CHARS not in body[1]
