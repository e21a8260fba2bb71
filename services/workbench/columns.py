"""The columns of a parked entry: one table that the index, the console's table, the CLI's
``dlq list`` and the snapshot's ``failed_payments.csv`` all read.

Each :class:`EntryColumn` says where its value comes from, how the index
keeps it (:data:`ColumnKind`), what it is called in each view and which
views show it. The views list their columns in this table's order; how a
view formats a value (masking, dashes, dates) stays with the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from services.workbench.model import EntrySummary, ParkedEntry

ColumnKind = Literal["id", "category", "time", "count", "amount", "state", "detail"]
"""How the index keeps a column.

``id``: a short string per row, mostly distinct (a fixed-width byte column);
``category``: a string that repeats (codes into a dictionary); ``time``:
epoch milliseconds; ``count``: a whole number; ``amount``: the amount as
written plus its value (``amount_value``) to sort and filter on; ``state``:
the :class:`~services.workbench.model.EntryState`; ``detail``: a field of the
whole entry (:class:`~services.workbench.model.ParkedEntry`), not of its row,
so not in the index.
"""

SortKey: TypeAlias = str
"""The name of a column the index sorts by (one of :data:`SORT_KEYS`)."""


@dataclass(frozen=True, slots=True)
class EntryColumn:
    """One column (see the module docstring).

    ``name`` is the column's key everywhere: the sort key, the CSV header,
    the table model's column name. ``field`` is the attribute of the
    :class:`EntrySummary` that holds the value (of the :class:`ParkedEntry`
    for ``detail`` columns). ``title`` heads the console's table, ``cli_title``
    (``cli_width`` characters wide) the CLI's list. ``table``, ``cli`` and
    ``csv`` say which views show it (``table_hidden``: the console's table
    offers it in its column chooser but does not show it until chosen);
    ``searchable`` columns are matched by the free-text search; ``max_bytes``
    is the widest an ``id`` column is kept in the index (longer values are
    kept whole beside it).
    """

    name: str
    field: str
    kind: ColumnKind
    title: str
    tooltip: str = ""
    table: bool = False
    table_hidden: bool = False
    cli_title: str = ""
    cli_width: int = 0
    csv: bool = False
    searchable: bool = False
    max_bytes: int = 0

    @property
    def cli(self) -> bool:
        return bool(self.cli_title)

    @property
    def sortable(self) -> bool:
        return self.kind != "detail"

    @property
    def numeric(self) -> bool:
        """Right-aligned: a number."""
        return self.kind in ("count", "amount")

    @property
    def descending_first(self) -> bool:
        """Times and numbers sort newest, largest, most first when first clicked."""
        return self.kind in ("time", "count", "amount")

    def value(self, entry: EntrySummary | ParkedEntry) -> object:
        """The column's value for a row (or for a whole entry)."""
        if isinstance(entry, ParkedEntry):
            return getattr(entry if self.kind == "detail" else entry.summary, self.field)
        return getattr(entry, self.field)

    def text(self, entry: EntrySummary | ParkedEntry) -> str | None:
        """The value of a text column (None when the row has none)."""
        value = self.value(entry)
        return value if isinstance(value, str) else None


COLUMNS: Final[tuple[EntryColumn, ...]] = (
    EntryColumn(
        "entry_id",
        "entry_id",
        "id",
        "Entry id",
        cli_title="ID",
        cli_width=20,
        csv=True,
        searchable=True,
        max_bytes=128,
    ),
    EntryColumn("dlq", "dlq", "category", "DLQ", csv=True, searchable=True),
    EntryColumn(
        "dead_lettered_at",
        "dead_lettered_at_ms",
        "time",
        "Dead-lettered at",
        "When the broker dead-lettered the message, in local time",
        table=True,
        cli_title="DEAD-LETTERED",
        cli_width=24,
        csv=True,
    ),
    EntryColumn("parked_at", "parked_at_ms", "time", "Parked at", csv=True),
    EntryColumn(
        "payment_id",
        "payment_id",
        "id",
        "Payment id",
        "The payment id in the body",
        table=True,
        cli_title="PAYMENT",
        cli_width=18,
        csv=True,
        searchable=True,
        max_bytes=64,
    ),
    EntryColumn(
        "merchant",
        "merchant",
        "category",
        "Merchant",
        "The merchant in the body",
        table=True,
        cli_title="MERCHANT",
        cli_width=16,
        csv=True,
        searchable=True,
    ),
    EntryColumn(
        "amount",
        "amount",
        "amount",
        "Amount",
        "The amount and currency in the body",
        table=True,
        cli_title="AMOUNT",
        cli_width=14,
        csv=True,
        searchable=True,
        max_bytes=32,
    ),
    EntryColumn("currency", "currency", "category", "Currency", csv=True),
    EntryColumn(
        "reason",
        "reason",
        "category",
        "Reason",
        "Why it was dead-lettered (x-death)",
        table=True,
        table_hidden=True,  # the cause says more; it is the cause when nothing else is known
        cli_title="REASON",
        cli_width=14,
        csv=True,
        searchable=True,
    ),
    EntryColumn(
        "cause",
        "cause",
        "category",
        "Cause",
        "Why the payment failed: its failure event on the flow, else the message's own"
        " error, else the dead-letter reason",
        table=True,
        cli_title="CAUSE",
        cli_width=32,
        csv=True,
        searchable=True,
    ),
    EntryColumn(
        "cause_source",
        "cause_source",
        "category",
        "Cause from",
        "Where the cause came from: flow, message or dead_letter",
        csv=True,
    ),
    EntryColumn(
        "failure_group",
        "failure_group",
        "category",
        "Failure group",
        "The cause with its numbers, ids and times taken out: causes that differ only in"
        " those are one group",
        csv=True,
    ),
    EntryColumn(
        "origin_queue",
        "origin_queue",
        "category",
        "Queue",
        "The queue it died in: where a requeue sends it back",
        table=True,
        cli_title="QUEUE",
        cli_width=20,
        csv=True,
        searchable=True,
    ),
    EntryColumn(
        "routing_key",
        "routing_key",
        "category",
        "Routing key",
        "The original routing key",
        table=True,
        table_hidden=True,  # the queue says nearly as much
        csv=True,
        searchable=True,
    ),
    EntryColumn(
        "origin_exchange",
        "origin_exchange",
        "category",
        "Original exchange",
        "Where a requeue sends a dead letter that names no queue (Spring AMQP's"
        " x-original-exchange, with the routing key)",
    ),
    EntryColumn(
        "attempts",
        "attempts",
        "count",
        "Attempts",
        "Deaths counted in x-death plus retries by the console",
        table=True,
        table_hidden=True,  # the detail pane says it; the outcome takes its room at 1600 px
        cli_title="TRIES",
        cli_width=5,
        csv=True,
    ),
    EntryColumn(
        "state",
        "state",
        "state",
        "State",
        "Where the entry is in the workbench",
        table=True,
        cli_title="STATE",
        cli_width=9,
        csv=True,
    ),
    EntryColumn(
        "outcome",
        "outcome",
        "category",
        "Outcome",
        "What became of the payment after a requeue or retry: pending, succeeded,"
        " declined, failed again or no outcome",
        table=True,
    ),
    EntryColumn(
        "last_operator",
        "last_operator",
        "category",
        "Last operator",
        "Who last acted on the entry",
        table=True,
        table_hidden=True,  # the state's tooltip and the audit trail say it too
        cli_title="BY",
        cli_width=10,
        csv=True,
    ),
    EntryColumn("last_error", "last_error", "detail", "Last error", csv=True),
    EntryColumn("message_id", "message_id", "id", "Message id", searchable=True, max_bytes=64),
    EntryColumn("size", "size", "count", "Size"),
)

COLUMN: Final[dict[str, EntryColumn]] = {column.name: column for column in COLUMNS}
TABLE_COLUMNS: Final = tuple(column for column in COLUMNS if column.table)
TABLE_HIDDEN: Final = frozenset(column.name for column in TABLE_COLUMNS if column.table_hidden)
"""The console table's columns an operator turns on from the header's menu."""
CLI_COLUMNS: Final = tuple(column for column in COLUMNS if column.cli)
CSV_COLUMNS: Final = tuple(column for column in COLUMNS if column.csv)
SORT_KEYS: Final[tuple[SortKey, ...]] = tuple(c.name for c in COLUMNS if c.sortable)
