"""EntryDetailPane: masked bodies of every kind, properties, headers, x-death, audit, actions."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    Qt,
)
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTabWidget,
    QWidget,
)

from services.config import FieldPaths
from services.masking.json import HIDDEN
from services.outcomes.model import EntryOutcome, Outcome
from services.workbench.body_format import PREVIEW_BYTES
from services.workbench.codec import MessageRecord
from services.workbench.death_history import DEATHS_HEADER, HISTORY_HEADER
from services.workbench.model import EntryState, ParkedEntry, summarize
from services.workbench.redis_layout import summary_from_blob
from tests.helpers.detail_entries import (
    CVV,
    ENTRY_ID,
    MASKED_PAN,
    NOW_MS,
    PAN,
    audit_records,
    death_headers,
    make_entry,
)
from tests.helpers.images import pixels
from tests.helpers.zones import local_zone
from widgets.workbench.detail import READ_ONLY_REASON, EntryDetailPane
from widgets.workbench.detail_tables import short_time


def model_texts(model: QAbstractItemModel, parent: QModelIndex | None = None) -> list[str]:
    """Every display and tooltip text of a model, recursively."""
    if parent is None:
        parent = QModelIndex()
    out: list[str] = []
    columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(parent)
    for row in range(model.rowCount(parent)):
        for column in range(columns):
            index = model.index(row, column, parent)
            for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                value = model.data(index, role)
                if value is not None:
                    out.append(str(value))
            flat = isinstance(model, QAbstractListModel | QAbstractTableModel)
            if column == 0 and not flat and model.hasChildren(index):
                out.extend(model_texts(model, index))
    for column in range(columns):
        header = model.headerData(column, Qt.Orientation.Horizontal)
        if header is not None:
            out.append(str(header))
    return out


def all_text(root: QWidget) -> str:
    """All text a person could see in a widget tree (labels, buttons, tooltips, views, tabs)."""
    parts: list[str] = [root.windowTitle(), root.toolTip()]
    for widget in [root, *root.findChildren(QWidget)]:
        parts.append(widget.toolTip())
        if isinstance(widget, QLabel | QAbstractButton | QLineEdit):
            parts.append(widget.text())
        elif isinstance(widget, QPlainTextEdit):
            parts.append(widget.toPlainText())
        elif isinstance(widget, QComboBox):
            parts.extend(widget.itemText(i) for i in range(widget.count()))
        elif isinstance(widget, QTabWidget):
            parts.extend(widget.tabText(i) for i in range(widget.count()))
        if isinstance(widget, QAbstractItemView) and widget.model() is not None:
            parts.extend(model_texts(widget.model()))
        full_text = getattr(widget, "full_text", None)
        if callable(full_text):
            parts.append(full_text())
    return "\n".join(p for p in parts if p)


def tree_rows(pane: EntryDetailPane) -> dict[str, tuple[str, str]]:
    """Header tree rows by dotted path: (type, value)."""
    rows: dict[str, tuple[str, str]] = {}

    def walk(item, prefix):
        path = f"{prefix}.{item.text(0)}" if prefix else item.text(0)
        rows[path] = (item.text(1), item.text(2))
        for i in range(item.childCount()):
            walk(item.child(i), path)

    tree = pane.headers_tree
    for i in range(tree.topLevelItemCount()):
        walk(tree.topLevelItem(i), "")
    return rows


@pytest.fixture
def pane(qtbot):
    widget = EntryDetailPane()
    qtbot.addWidget(widget)
    widget.resize(640, 820)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


# --------------------------------------------------------------------------- body


def test_json_body_is_pretty_printed_and_masked(pane):
    pane.show_entry(make_entry())
    assert pane.body.kind == "json"
    assert pane.body_view() == "json"
    assert pane.body_stack.currentWidget() is pane.text_view
    text = pane.text_view.toPlainText()
    assert text.startswith("{\n")
    assert f'    "number": "{MASKED_PAN}",' in text
    assert f'    "cvv": "{HIDDEN}",' in text
    assert '  "amount": 42.50,' in text  # the number as written
    assert PAN not in text and CVV not in text
    assert "JSON" in pane.body_info_label.text()


def test_no_card_number_or_cvv_anywhere_in_the_pane(pane, qtbot):
    entry = make_entry(last_error=f"declined card {PAN} (cvv {CVV})")
    pane.show_entry(entry)
    pane.show_audit(audit_records())
    # look at every view of the body too
    pane.view_combo.setCurrentIndex(pane.view_combo.findData("hex"))
    for index in range(pane.tabs.count()):
        pane.tabs.setCurrentIndex(index)
        qtbot.wait(5)
    text = all_text(pane)
    assert MASKED_PAN in text
    assert PAN not in text
    assert "4111 1111 1111 1111" not in text
    assert CVV not in text
    # the hex view shows the bytes with the card data starred out, offsets unchanged
    shown = pane.hex_model.shown_bytes()
    assert len(shown) == len(entry.record.body)
    assert MASKED_PAN.encode() in shown and PAN.encode() not in shown
    assert b'"cvv": "***"' in shown and CVV.encode() not in shown


def test_text_body_is_shown_as_text_and_masked(pane):
    body = f"PAYMENT pay_1 card={PAN} cvv={CVV}\nsecond line".encode()
    pane.show_entry(make_entry(body))
    assert pane.body.kind == "text"
    text = pane.text_view.toPlainText()
    assert text == f"PAYMENT pay_1 card={MASKED_PAN} cvv={HIDDEN}\nsecond line"
    assert pane.wrap_check.isChecked()


def test_binary_body_is_a_hex_dump(pane):
    body = bytes(range(256)) + b" card " + PAN.encode()
    pane.show_entry(make_entry(body))
    assert pane.body.kind == "binary"
    assert pane.body_stack.currentWidget() is pane.hex_view
    assert pane.body_view() == "hex"
    assert pane.hex_model.rowCount() == (len(body) + 15) // 16
    first = pane.hex_model.index(0).data()
    assert first == (
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|"
    )
    assert pane.hex_model.index(3).data().endswith("|0123456789:;<=>?|")
    assert PAN not in pane.hex_model.text()
    assert "Not valid UTF-8" in pane.body_note_label.text()
    assert pane.body_note_label.isVisible()


def test_invalid_utf8_is_shown_as_hex_and_as_lossy_text(pane):
    body = b'{"payment_id": "p\xff\xfe", "note": "ok"}'
    pane.show_entry(make_entry(body))
    assert pane.body.kind == "binary"
    assert pane.body_stack.currentWidget() is pane.hex_view
    assert pane.hex_model.index(1).data().startswith("00000010  70 ff fe 22")
    labels = [pane.view_combo.itemText(i) for i in range(pane.view_combo.count())]
    assert labels == ["Hex", "Text (lossy)"]
    pane.view_combo.setCurrentIndex(1)
    assert pane.body_stack.currentWidget() is pane.text_view
    assert pane.text_view.toPlainText() == '{"payment_id": "p\ufffd\ufffd", "note": "ok"}'


def test_control_characters_make_a_body_binary(pane):
    pane.show_entry(make_entry(b"\x00\x01abc"))
    assert pane.body.kind == "binary"
    assert "control characters" in pane.body_note_label.text()


def test_empty_body(pane):
    pane.show_entry(make_entry(b""))
    assert pane.body.kind == "empty"
    assert pane.body_stack.currentWidget() is pane.empty_body_label
    assert "Empty body" in pane.empty_body_label.text()
    assert not pane.view_combo.isEnabled()
    assert "0 B" in pane.body_info_label.text()


def test_8_mb_body_is_cut_with_a_note(pane, qtbot):
    item = b'{"id": %d, "pan": "4111111111111111", "cvv": "918", "memo": "xxxxxxxxxxxxxxxx"},'
    chunks = [item % i for i in range(8 * 1024 * 1024 // len(item) + 1)]
    body = (b'{"items": [' + b"".join(chunks))[: 8 * 1024 * 1024]
    assert len(body) == 8 * 1024 * 1024

    pane.show_entry(make_entry(body))
    qtbot.wait(1)

    note = pane.body_note_label.text()
    assert "256 KB of 8.0 MB" in note
    assert pane.body_note_label.isVisible()
    assert pane.body.truncated
    assert pane.body.shown_bytes <= PREVIEW_BYTES
    text = pane.text_view.toPlainText()
    assert text.startswith('{\n  "items": [\n    {\n      "id": 0,')
    assert PAN not in text and '"cvv": "918"' not in text
    assert len(text) < 2 * PREVIEW_BYTES
    assert pane.hex_model.rowCount() <= PREVIEW_BYTES // 16


def test_large_binary_body_is_cut_too(pane):
    body = bytes(range(256)) * (4 * 4096)  # 4 MB
    pane.show_entry(make_entry(body))
    assert pane.body.kind == "binary"
    assert pane.hex_model.rowCount() == PREVIEW_BYTES // 16
    assert "256 KB of 4.0 MB" in pane.body_note_label.text()


# --------------------------------------------------------------------------- tabs


def test_properties_are_listed(pane, monkeypatch):
    with local_zone(monkeypatch, "Europe/Berlin"):
        pane.show_entry(make_entry())
    table = pane.properties_table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["content_type"] == "application/json"
    assert rows["delivery_mode"] == "2 (persistent)"
    assert rows["message_id"] == "msg-7731"
    assert rows["timestamp"].endswith((" CET", " CEST"))  # local, as the table shows it
    assert rows["exchange"] == "payments.dlx"
    assert rows["routing_key"] == "payment.authorized"


def test_headers_of_every_type_are_shown_with_their_amqp_type(pane, monkeypatch):
    headers = {
        "flag": True,
        "small": -7,
        "big": 2**63 + 5,
        "ratio": 0.25,
        "price": decimal.Decimal("1.50"),
        "name": "checkout",
        "raw": b"\x01\x02\xab\xcd",
        "buffer": bytearray(b"\xff\x00"),
        "sent-at": datetime.datetime(2024, 5, 3, 14, 1, 12, tzinfo=datetime.UTC),
        "nothing": None,
        "trace": {"span": "abc", "nested": {"depth": 2}},
        "tags": ["eu", 7, None, [1, 2]],
        "card_number": PAN,
        "x-card-cvv": CVV,
        "note": f"paid with {PAN}",
    }
    with local_zone(monkeypatch, "Europe/Berlin"):  # times: local, with the zone named
        pane.show_entry(make_entry(headers=headers))
    rows = tree_rows(pane)
    assert rows["flag"] == ("boolean", "true")
    assert rows["small"] == ("integer", "-7")
    assert rows["big"] == ("integer", str(2**63 + 5))
    assert rows["ratio"] == ("float", "0.25")
    assert rows["price"] == ("decimal", "1.50")
    assert rows["name"] == ("string", "checkout")
    assert rows["raw"] == ("bytes", "01 02 ab cd")
    assert rows["buffer"] == ("byte array", "ff 00")
    assert rows["sent-at"] == ("timestamp", "2024-05-03 16:01:12 CEST")
    assert rows["nothing"] == ("void", "—")
    assert rows["trace"] == ("table", "2 fields")
    assert rows["trace.nested.depth"] == ("integer", "2")
    assert rows["tags"] == ("array", "4 items")
    assert rows["tags.[3].[1]"] == ("integer", "2")
    assert rows["card_number"] == ("string", MASKED_PAN)
    assert rows["x-card-cvv"] == ("string", HIDDEN)
    assert rows["note"] == ("string", f"paid with {MASKED_PAN}")
    assert pane.tabs.tabText(2) == f"Headers ({len(headers)})"


def test_x_death_history_most_recent_first(pane):
    pane.show_entry(make_entry())
    table = pane.deaths_table
    assert table.rowCount() == 2
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["Count", "Reason", "Queue", "Exchange", "Routing keys", "Time"]
    first = [table.item(0, c).text() for c in range(6)]
    second = [table.item(1, c).text() for c in range(6)]
    assert first[:5] == ["2", "rejected", "payments.process", "payments", "payment.authorized"]
    assert second[:5] == ["1", "expired", "payments.wait", "(default)", "payments.wait"]
    assert first[5] == short_time(NOW_MS - 3 * 60_000, seconds=True)
    assert "most recent first" in pane.deaths_note.text()
    assert "First died in payments.wait (expired)" in pane.deaths_note.text()
    assert pane.tabs.tabText(3) == "x-death (2)"


def test_deaths_of_earlier_requeue_cycles_follow_marked(pane, qtbot):
    """A message requeued twice before carries payops-deaths: the note gives the total
    and the earlier cycles' records follow the x-death rows, marked."""
    headers = death_headers()
    headers[DEATHS_HEADER] = 5
    headers[HISTORY_HEADER] = [
        {"queue": "payments.process", "reason": "rejected", "count": 4, "exchange": "payments"},
        {"queue": "payments.wait", "reason": "expired", "count": 1, "exchange": ""},
    ]
    pane.show_entry(make_entry(headers=headers))
    table = pane.deaths_table
    assert table.rowCount() == 4
    assert [table.item(r, 0).text() for r in range(4)] == ["2", "1", "↺ 4", "↺ 1"]
    assert table.item(2, 2).text() == "payments.process"
    note = pane.deaths_note.text()
    assert "8 deaths in all: 5 before earlier requeues (payops-deaths)" in note
    assert pane.facts["attempts"].full_text() == "9"  # 8 deaths and 1 payops-attempt
    pane.tabs.setCurrentIndex(3)
    qtbot.wait(20)
    assert pane.grab().save("/tmp/payops_detail_earlier_deaths.png")


def test_no_x_death(pane):
    pane.show_entry(make_entry(headers={}))
    assert pane.deaths_table.rowCount() == 0
    assert "No x-death header" in pane.deaths_note.text()
    assert pane.facts["reason"].full_text() == "—"


def test_header_shows_the_payment(pane):
    pane.show_entry(make_entry(last_error="unroutable: NO_ROUTE"))
    assert pane.payment_label.text() == "pay_8f2c1a77"
    assert pane.amount_label.text() == "42.50 EUR"
    assert pane.merchant_label.full_text() == "ACME Books Ltd"
    assert pane.state_badge.text() == "PARKED"
    assert pane.facts["reason"].full_text() == "rejected"
    assert pane.facts["origin_queue"].full_text() == "payments.process"
    assert pane.facts["attempts"].full_text() == "4"  # 2 + 1 x-death, 1 payops-attempt
    assert pane.last_error_label.isVisible()
    assert pane.last_error_label.text() == "Last error: unroutable: NO_ROUTE"


def test_no_last_error_hides_the_line(pane):
    pane.show_entry(make_entry())
    assert not pane.last_error_label.isVisible()


def test_audit_trail_shows_this_entry_newest_first(pane):
    pane.show_entry(make_entry())
    pane.show_audit(audit_records())
    model = pane.audit_model
    assert model.rowCount() == 2  # the third record is about another entry
    assert [model.record(r).operator for r in range(2)] == ["bob", "alice"]
    assert pane.tabs.tabText(4) == "Audit (2)"
    assert pane.audit_stack.currentWidget() is pane.audit_table
    detail = model.index(0, model.columns.index("detail")).data()
    assert PAN not in detail and CVV not in detail


def test_audit_trail_is_cleared_for_another_entry(pane):
    pane.show_entry(make_entry())
    pane.show_audit(audit_records())
    pane.show_entry(make_entry(entry_id="01900a1b2c3d00000005"))
    assert pane.audit_model.rowCount() == 0
    assert pane.audit_stack.currentWidget() is pane.audit_empty_label
    assert pane.tabs.tabText(4) == "Audit"


def test_live_update_keeps_the_tab_and_refreshes_the_state(pane):
    pane.show_entry(make_entry())
    pane.tabs.setCurrentIndex(2)
    pane.show_entry(make_entry(state=EntryState.REQUEUED, operator="alice"))
    assert pane.tabs.currentIndex() == 2
    assert pane.state_badge.text() == "REQUEUED"


def test_nothing_selected_shows_a_placeholder(pane):
    pane.show_entry(make_entry())
    pane.show_entry(None)
    assert pane.stack.currentWidget() is pane.placeholder
    assert not pane.requeue_button.isEnabled()
    pane.show_audit(audit_records())  # ignored
    assert pane.audit_model.rowCount() == 0


# --------------------------------------------------------------------------- actions


def test_buttons_emit_the_action_name(pane, qtbot):
    pane.show_entry(make_entry())
    for name, button in (
        ("requeue", pane.requeue_button),
        ("retry", pane.retry_button),
        ("cancel", pane.cancel_button),
    ):
        assert button.isEnabled()
        with qtbot.waitSignal(pane.action_requested) as blocker:
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert blocker.args == [name]
    assert "payments.process" in pane.requeue_button.toolTip()


def test_read_only_disables_every_action(pane, qtbot):
    pane.show_entry(make_entry())
    pane.set_read_only(True)
    for button in pane.action_buttons.values():
        assert not button.isEnabled()
        assert button.toolTip() == READ_ONLY_REASON
    with qtbot.assertNotEmitted(pane.action_requested):
        pane.on_requeue_clicked()
    pane.set_read_only(False)
    assert all(b.isEnabled() for b in pane.action_buttons.values())


def test_an_entry_acted_on_says_who_did_it(pane):
    updated = NOW_MS - 5 * 60_000
    pane.show_entry(make_entry(state=EntryState.REQUEUED, operator="alice", updated_at_ms=updated))
    expected = f"Requeued by alice at {short_time(updated)}"
    for button in pane.action_buttons.values():
        assert not button.isEnabled()
        assert button.toolTip() == expected
    assert pane.state_note.full_text() == expected


def test_an_entry_being_acted_on_says_so(pane):
    pane.show_entry(
        make_entry(state=EntryState.CLAIMED, operator="bob", action="retry", updated_at_ms=NOW_MS)
    )
    assert not pane.retry_button.isEnabled()
    assert pane.retry_button.toolTip() == f"Being retried by bob since {short_time(NOW_MS)}"


# --------------------------------------------------------------------------- picture


def test_detail_pane_screenshot(pane, qtbot, tmp_path: Path):
    pane.resize(640, 820)
    pane.show_entry(make_entry(last_error="unroutable: NO_ROUTE — no queue bound for the key"))
    pane.show_audit(audit_records())
    qtbot.wait(50)
    path = tmp_path / "payops_detail.png"
    assert pane.grab().save(str(path))
    shutil.copy(path, "/tmp/payops_detail.png")
    for index, name in ((2, "headers"), (3, "xdeath")):
        pane.tabs.setCurrentIndex(index)
        qtbot.wait(20)
        assert pane.grab().save(str(tmp_path / f"payops_detail_{name}.png"))

    image = QImage(str(path))
    assert (image.width(), image.height()) == (640, 820)
    values = pixels(image)
    assert np.unique(values).size > 200  # text, badge, highlighted JSON
    assert np.unique(values[: values.shape[0] // 4]).size > 50  # the header is drawn


# --------------------------------------------------------------------------- ids and CVVs

LUHN_ID = "pay_17d5570756950439"  # its last 13 digits pass the Luhn check (issue 9)


def id_entry(body: dict, *, headers: dict | None = None, fields: FieldPaths | None = None):
    record = MessageRecord(
        body=json.dumps(body).encode(),
        properties={"message_id": f"msg-{PAN}", "correlation_id": f"corr_{PAN}"},
        headers=headers or {},
        exchange="payments.dlx",
        routing_key="payment.failed",
    )
    summary = summarize("payments.dlq", ENTRY_ID, record, fields or FieldPaths(), NOW_MS)
    return ParkedEntry(summary=summary, record=record, deaths=(), fingerprint="cd" * 32, version=1)


def test_ids_that_pass_luhn_are_shown_in_full_in_header_properties_and_body(pane):
    pane.show_entry(id_entry({"payment_id": LUHN_ID, "note": PAN, "memo": f"ref {LUHN_ID}"}))
    assert pane.payment_label.text() == LUHN_ID
    assert pane.entry_id_label.toolTip().endswith(f"message id msg-{PAN}")
    table = pane.properties_table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["message_id"] == f"msg-{PAN}" and rows["correlation_id"] == f"corr_{PAN}"
    text = pane.text_view.toPlainText()
    assert f'"payment_id": "{LUHN_ID}"' in text
    assert f'"note": "{MASKED_PAN}"' in text  # a card number standing alone: masked
    # an id quoted in free text is glued to its letters: an identifier, not a card number
    assert f'"memo": "ref {LUHN_ID}"' in text


def test_the_profile_id_paths_decide_what_is_an_id_in_the_body(pane):
    pane.set_id_paths(FieldPaths(payment_id="payment.id").id_paths)
    body = {"payment": {"id": f"ord-{PAN}"}, "payment_id": f"ord-{PAN}"}
    pane.show_entry(id_entry(body, fields=FieldPaths(payment_id="payment.id")))
    text = pane.text_view.toPlainText()
    assert f'"id": "ord-{PAN}"' in text  # the profile's id path
    assert f'"payment_id": "ord-{MASKED_PAN}"' in text  # not an id path in this profile
    assert pane.payment_label.text() == f"ord-{PAN}"


def test_nothing_cvv_like_is_shown_in_headers_or_in_free_text_of_the_body(pane):
    headers = {
        "cvv": CVV,
        "CVC": "1234",
        "cvv2": 737,
        "security_code": b"555",
        "note": "customer said CVC: 1234, cvv 918",
    }
    pane.show_entry(
        id_entry({"payment_id": "pay_1", "memo": "cvv 918 / CVC: 1234"}, headers=headers)
    )
    rows = tree_rows(pane)
    for name in ("cvv", "CVC", "cvv2", "security_code"):
        assert rows[name][1] == HIDDEN, name
    assert rows["note"][1] == f"customer said CVC: {HIDDEN}, cvv {HIDDEN}"
    text = pane.text_view.toPlainText()
    assert f'"memo": "cvv {HIDDEN} / CVC: {HIDDEN}"' in text
    assert "918" not in text and "1234" not in text


def test_the_outcome_line_says_what_became_of_the_payment_and_opens_its_new_entry(pane, qtbot):
    entry = make_entry()
    pane.show_entry(entry)
    assert not pane.outcome_line.isVisible()  # never replayed: no outcome to tell

    failed = EntryOutcome(
        Outcome.FAILED_AGAIN, detail="failed at 14:05:31 CET", link="0193aa01", job="0193j"
    )
    pane.show_entry(dataclasses.replace(entry, outcome=failed))
    line = pane.outcome_line
    assert line.isVisible()
    assert line.plain_text() == "Outcome failed again: failed at 14:05:31 CET (new entry 0193aa01)"
    assert "failed again" in line.label.text() and line.open_button.isVisible()
    with qtbot.waitSignal(line.entry_link_activated) as opened:
        qtbot.mouseClick(line.open_button, Qt.MouseButton.LeftButton)
    assert opened.args == ["0193aa01"]

    pane.show_entry(dataclasses.replace(entry, outcome=EntryOutcome(Outcome.SUCCEEDED)))
    assert "succeeded" in line.label.text() and not line.open_button.isVisible()


def test_a_damaged_entry_is_shown_marked_and_masked(pane):
    """Numbers where the stored summary holds text (a card number among them), an exchange
    and a routing key that are not UTF-8: shown as ``<number ...>`` and ``\\xNN``, masked."""
    numbers = [1, NOW_MS, int(PAN), int(PAN), 12.5, "12.5", ["EUR"], {"code": 7}]
    numbers += [7, True, 1, ["json"], 10, int(PAN)]
    summary = summary_from_blob(
        "payments.dlq",
        ENTRY_ID,
        NOW_MS,
        orjson.dumps(numbers),
        state=EntryState.PARKED,
        operator=None,
    )
    not_utf8 = f"ex\xff{PAN}".encode("latin-1").decode("utf-8", "surrogateescape")
    record = MessageRecord(body=b'{"payment_id": 1}', exchange=not_utf8, routing_key="rk.\udcfe")
    pane.show_entry(
        ParkedEntry(summary=summary, record=record, deaths=(), fingerprint="cd" * 32, version=1)
    )
    table = pane.properties_table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["exchange"] == f"ex\\xff{MASKED_PAN}"
    assert rows["routing_key"] == "rk.\\xfe"
    assert pane.payment_label.text() == f"<number {MASKED_PAN}>"
    text = all_text(pane)
    assert PAN not in text and f"<number {MASKED_PAN}>" in text


def test_x_death_texts_are_shown_masked_with_bytes_that_are_not_utf8_escaped(pane):
    """An x-death exchange that is not UTF-8 and holds a card number (the wire gives such
    a value as bytes), a queue, reason and routing key holding one (the entry's reason and
    queue come from them), the first death's exchange holding one: masked in the x-death
    table, its note and the facts over the tabs, the bytes as ``\\xNN``."""
    headers = death_headers()
    latest, first = headers["x-death"]
    latest.update(
        exchange=f"ex\xff{PAN}".encode("latin-1"),
        queue=f"q-{PAN}",
        reason=f"why-{PAN}",
        **{"routing-keys": [f"rk-{PAN}"]},
    )
    first["exchange"] = f"dlx-{PAN}"
    headers[DEATHS_HEADER] = 1
    headers[HISTORY_HEADER] = [{"queue": f"old-{PAN}", "reason": "r", "count": 1}]
    pane.show_entry(make_entry(headers=headers))
    table = pane.deaths_table
    rows = [[table.item(r, c).text() for c in range(1, 5)] for r in range(3)]
    masked_latest = [f"why-{MASKED_PAN}", f"q-{MASKED_PAN}", f"ex\\xff{MASKED_PAN}"]
    assert rows[0] == [*masked_latest, f"rk-{MASKED_PAN}"]
    assert rows[1][2] == f"dlx-{MASKED_PAN}"
    assert rows[2][1] == f"old-{MASKED_PAN}"
    assert f"via dlx-{MASKED_PAN}." in pane.deaths_note.text()
    assert pane.facts["reason"].full_text() == f"why-{MASKED_PAN}"
    assert pane.facts["origin_queue"].full_text() == f"q-{MASKED_PAN}"
    assert PAN not in all_text(pane)
    assert not any(PAN in button.toolTip() for button in pane.action_buttons.values())


def test_reason_and_origin_queue_facts_show_control_characters_escaped_and_masked(pane):
    """A dead-letter reason holding a card number, an ESC sequence and a NUL, a queue holding
    a NUL and an ESC: the facts over the tabs (and their tooltips, the cause, the buttons'
    tooltips) show them as shown texts are everywhere (``masked_escaped``): masked, the
    control characters as ``\\xNN``, never raw."""
    headers = death_headers()
    latest = headers["x-death"][0]
    reason = f"declined \x1b[31m card {PAN}\x00 by acquirer"
    queue = "payments.\x00auth\x1b[2J"
    latest.update(reason=reason, queue=queue)
    pane.show_entry(make_entry(headers=headers))
    shown_reason = f"declined \\x1b[31m card {MASKED_PAN}\\x00 by acquirer"
    shown_queue = "payments.\\x00auth\\x1b[2J"
    assert pane.facts["reason"].full_text() == shown_reason
    assert pane.facts["reason"].toolTip() == shown_reason
    assert pane.facts["origin_queue"].full_text() == shown_queue
    assert pane.facts["origin_queue"].toolTip().startswith(f"{shown_queue}: ")
    texts = [label.full_text() for label in pane.facts.values()]
    texts += [label.toolTip() for label in pane.facts.values()]
    texts += [pane.facts_grid.cause.text(), pane.facts_grid.cause.toolTip()]
    texts += [button.toolTip() for button in pane.action_buttons.values()]
    assert any(shown_queue in tip for tip in texts[-len(pane.action_buttons) :])
    for text in texts:
        assert "\x1b" not in text and "\x00" not in text, repr(text)
        assert PAN not in text
