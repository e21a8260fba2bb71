"""The dialogs around an action: confirm it (here), watch it, read what it did.

- :class:`ConfirmActionDialog` says exactly what will happen ("Requeue 1,234
  failed payments to payments.process"), asks for a reason (required to
  cancel), a retry delay, for a bulk requeue or retry its pace (full speed, a rate,
  a canary: :class:`~widgets.workbench.pace_chooser.PaceChooser`), and for a single
  JSON entry an optional edited body; it returns an
  :class:`~services.workbench.actions.report.ActionRequest` (and :meth:`pace`).
- :class:`~widgets.workbench.action_progress.ActionProgressDialog` shows bulk
  work: done / total, rate, elapsed, ETA, and a Cancel button that asks the
  app to stop after the entry in flight.
- :class:`~widgets.workbench.action_summary.ActionSummaryDialog` says what
  succeeded and what did not, and why.

Pure views: they take plain data and emit intents; they run nothing.
"""

from __future__ import annotations

import json
from typing import Final

from PySide6.QtCore import (
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QColor,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from services.masking.json import (
    MaskedDocument,
    dumps_compact,
    leftover_masks,
    mask_for_edit,
    mask_sensitive_text,
    unmask_edit,
)
from services.workbench.actions.names import Action
from services.workbench.actions.pace import Pace
from services.workbench.actions.report import (
    ActionPlan,
    ActionRequest,
    format_delay,
    plural,
)
from widgets.common import colors
from widgets.common.theme import repolish
from widgets.workbench.body_views import JsonHighlighter, monospace_font
from widgets.workbench.pace_chooser import PaceChooser

__all__ = [
    "DELAY_CHOICES",
    "ActionPlan",
    "ActionRequest",
    "ConfirmActionDialog",
]

DELAY_CHOICES: Final[tuple[tuple[str, int | None], ...]] = (
    ("No delay", 0),
    ("30 s", 30),
    ("1 min", 60),
    ("5 min", 300),
    ("15 min", 900),
    ("1 h", 3600),
    ("Custom…", None),
)
"""Retry delays on offer: (label, seconds); None asks for a number of seconds."""
MAX_DELAY_S: Final = 7 * 24 * 3600
LIVE_VALIDATION_CHARS: Final = 64 * 1024
"""Bodies up to this size are validated on every keystroke, larger ones after a pause."""


def held_back_text(reasons: tuple[str, ...], shown: int = 3) -> str:
    """``2 will be held back by the replay gate: captured at 14:05:31 CET by the flow; ...``
    (masked; "" when none)."""
    if not reasons:
        return ""
    distinct = sorted(set(reasons))
    why = "; ".join(mask_sensitive_text(r) for r in distinct[:shown])
    more = f"; and {len(distinct) - shown:,} other reasons" if len(distinct) > shown else ""
    return (
        f"{len(reasons):,} will be held back by the replay gate (nothing is sent for"
        f" {'it' if len(reasons) == 1 else 'them'}): {why}{more}"
    )


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("FieldCaption")
    return label


# --------------------------------------------------------------------------- confirm


class ConfirmActionDialog(QDialog):
    """Confirm one action on one or many parked entries.

    ``plan`` says how many entries go where (and how many will be skipped).
    ``raw_body`` is the real body of the entry when the plan is a retry of a
    single entry: when it is JSON the operator may edit it. The editor shows
    the body masked (card numbers, CVV codes) and puts the real values back
    in :attr:`ActionRequest.edited_body`; a masked value the operator changed
    is sent as typed, and the editor says so.

    On confirmation ``confirmed`` carries the :class:`ActionRequest` (for
    ``open()`` without a nested event loop); after ``exec()`` returns
    ``Accepted``, :meth:`request` gives the same. Enter confirms only while
    everything is valid; Esc cancels.
    """

    confirmed = Signal(object)

    def __init__(
        self,
        plan: ActionPlan,
        *,
        raw_body: bytes | None = None,
        held_back: tuple[str, ...] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ConfirmActionDialog")
        self.plan = plan
        self.held_back = held_back
        self._document: MaskedDocument | None = None
        self._body_error: str | None = None
        self._edited: bytes | None = None
        self._request: ActionRequest | None = None
        verb = plan.action.label
        self.setWindowTitle(f"{verb} failed payments")
        self.setModal(True)

        self.headline_label = QLabel()
        self.headline_label.setObjectName("DialogHeadline")
        self.headline_label.setWordWrap(True)
        self.headline_label.setTextFormat(Qt.TextFormat.PlainText)
        self.consequence_label = QLabel(plan.consequence())
        self.consequence_label.setObjectName("DialogSubline")
        self.consequence_label.setWordWrap(True)
        self.skipped_label = QLabel(plan.skipped_line())
        self.skipped_label.setObjectName("SkippedNote")
        self.skipped_label.setWordWrap(True)
        self.skipped_label.setVisible(plan.skipped > 0)
        # The replay gate: what it will hold back, and the explicit choice to send anyway.
        self.held_label = QLabel(held_back_text(held_back))
        self.held_label.setObjectName("SkippedNote")
        self.held_label.setWordWrap(True)
        self.held_label.setTextFormat(Qt.TextFormat.PlainText)
        self.held_label.setVisible(bool(held_back))
        self.force_check = QCheckBox(
            f"Send {'it' if len(held_back) == 1 else 'them'} anyway"
            " (needs a note; audited as forced past the replay gate)"
        )
        self.force_check.setObjectName("ForceCheck")
        self.force_check.setVisible(bool(held_back))

        form = QFormLayout()
        form.setContentsMargins(0, 4, 0, 0)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        # Retry delay.
        self.delay_combo = QComboBox()
        self.delay_combo.setObjectName("DelayCombo")
        for label, seconds in DELAY_CHOICES:
            self.delay_combo.addItem(label, seconds)
        self.custom_delay_spin = QSpinBox()
        self.custom_delay_spin.setObjectName("CustomDelay")
        self.custom_delay_spin.setRange(1, MAX_DELAY_S)
        self.custom_delay_spin.setValue(120)
        self.custom_delay_spin.setSuffix(" s")
        self.custom_delay_spin.setVisible(False)
        self.delay_hint = QLabel()
        self.delay_hint.setObjectName("DialogSubline")
        delay_row = QHBoxLayout()
        delay_row.setSpacing(6)
        delay_row.addWidget(self.delay_combo)
        delay_row.addWidget(self.custom_delay_spin)
        delay_row.addWidget(self.delay_hint, 1)
        self._delay_caption = _caption("Delay")
        if plan.action is Action.RETRY:
            form.addRow(self._delay_caption, delay_row)
        else:
            for widget in (self.delay_combo, self.custom_delay_spin, self.delay_hint):
                widget.setVisible(False)

        # Pace (a bulk requeue or retry): full speed unless the operator chooses otherwise.
        self.pace_chooser: PaceChooser | None = None
        self.pace_problem_label = QLabel()
        self.pace_problem_label.setObjectName("ValidationWarn")
        self.pace_problem_label.setWordWrap(True)
        self.pace_problem_label.setTextFormat(Qt.TextFormat.PlainText)
        self.pace_problem_label.setVisible(False)
        if plan.action is not Action.CANCEL and plan.total > 1:
            self.pace_chooser = PaceChooser(plan.total)
            pace_box = QVBoxLayout()
            pace_box.setContentsMargins(0, 0, 0, 0)
            pace_box.setSpacing(4)
            pace_box.addWidget(self.pace_chooser)
            pace_box.addWidget(self.pace_problem_label)
            form.addRow(_caption("Pace"), pace_box)

        # Reason.
        self.reason_edit = QLineEdit()
        self.reason_edit.setObjectName("ReasonEdit")
        if plan.action is Action.CANCEL:
            self.reason_edit.setPlaceholderText("Why these payments are cancelled (required)")
            reason_caption = _caption("Reason *")
        else:
            self.reason_edit.setPlaceholderText("A note for the audit trail (optional)")
            reason_caption = _caption("Note")
        self.reason_edit.setMaxLength(500)
        # Says, in the dialog and not only in a tooltip, why it cannot be confirmed yet.
        self.problem_label = QLabel()
        self.problem_label.setObjectName("ValidationWarn")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        reason_box = QVBoxLayout()
        reason_box.setContentsMargins(0, 0, 0, 0)
        reason_box.setSpacing(4)
        reason_box.addWidget(self.reason_edit)
        reason_box.addWidget(self.problem_label)
        form.addRow(reason_caption, reason_box)

        # Body editor (retry of one JSON entry).
        self.edit_check = QCheckBox("Edit the JSON body before retrying")
        self.edit_check.setObjectName("EditBodyCheck")
        self.edit_warning = QLabel(
            "⚠ The edited body is recorded in the audit trail. Card numbers and CVV"
            " codes stay masked here and are sent as they were, unless you change them."
        )
        self.edit_warning.setObjectName("EditWarning")
        self.edit_warning.setWordWrap(True)
        self.body_edit = QPlainTextEdit()
        self.body_edit.setObjectName("BodyEditor")
        self.body_edit.setFont(monospace_font())
        self.body_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.body_edit.setTabChangesFocus(False)
        self.body_edit.setMinimumHeight(180)
        self.highlighter = JsonHighlighter(self.body_edit.document())
        self.body_status_label = QLabel()
        self.body_status_label.setObjectName("ValidationOk")
        self.body_status_label.setWordWrap(True)
        self.body_status_label.setTextFormat(Qt.TextFormat.PlainText)
        self._validate_timer = QTimer(self)
        self._validate_timer.setSingleShot(True)
        self._validate_timer.setInterval(200)
        editor_box = QWidget()
        editor_column = QVBoxLayout(editor_box)
        editor_column.setContentsMargins(0, 0, 0, 0)
        editor_column.setSpacing(6)
        editor_column.addWidget(self.edit_warning)
        editor_column.addWidget(self.body_edit, 1)
        editor_column.addWidget(self.body_status_label)
        self.editor_box = editor_box
        self.editor_box.setVisible(False)
        editable = self._prepare_document(raw_body)
        self.edit_check.setVisible(editable)

        self.buttons = QDialogButtonBox()
        self.ok_button = QPushButton()
        cancel = plan.action is Action.CANCEL
        self.ok_button.setObjectName("DangerButton" if cancel else "ConfirmButton")
        self.ok_button.setDefault(True)
        self.ok_button.setAutoDefault(True)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        # "Back", not "Don't cancel": one button in this dialog says "cancel", the destructive one
        self.back_button = self.buttons.addButton(
            "Back" if cancel else "Don't " + verb.lower(),
            QDialogButtonBox.ButtonRole.RejectRole,
        )
        self.back_button.setToolTip("Close without changing anything (Esc)")
        self.back_button.setAutoDefault(False)

        column = QVBoxLayout(self)
        column.setContentsMargins(18, 16, 18, 14)
        column.setSpacing(10)
        column.addWidget(self.headline_label)
        column.addWidget(self.consequence_label)
        column.addWidget(self.skipped_label)
        column.addWidget(self.held_label)
        column.addWidget(self.force_check)
        column.addLayout(form)
        column.addWidget(self.edit_check)
        column.addWidget(self.editor_box, 1)
        column.addStretch(0)
        column.addWidget(self.buttons)

        self._connect_signals()
        self._refresh()
        self.setMinimumWidth(520 if self.pace_chooser is None else 640)
        if cancel:
            self.reason_edit.setFocus()

    def _connect_signals(self) -> None:
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.delay_combo.currentIndexChanged.connect(self.on_delay_changed)
        self.custom_delay_spin.valueChanged.connect(self._refresh)
        self.reason_edit.textChanged.connect(self._refresh)
        self.force_check.toggled.connect(self.on_force_toggled)
        self.edit_check.toggled.connect(self.on_edit_toggled)
        if self.pace_chooser is not None:
            self.pace_chooser.changed.connect(self._refresh)
        self.body_edit.textChanged.connect(self.on_body_text_changed)
        self._validate_timer.timeout.connect(self.validate_body)

    def _prepare_document(self, raw_body: bytes | None) -> bool:
        if self.plan.action is not Action.RETRY or self.plan.total != 1 or not raw_body:
            return False
        try:
            document = mask_for_edit(raw_body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False
        if not isinstance(document.value, dict | list):
            return False
        self._document = document
        return True

    # -- state ---------------------------------------------------------------------------

    @property
    def can_edit_body(self) -> bool:
        """Whether this dialog offers the body editor (a retry of one JSON entry)."""
        return self._document is not None

    def delay_s(self) -> int:
        """The chosen retry delay in seconds (0: none)."""
        if self.plan.action is not Action.RETRY:
            return 0
        seconds = self.delay_combo.currentData()
        if seconds is None:
            return int(self.custom_delay_spin.value())
        return int(seconds)

    def problem(self) -> str | None:
        """Why the dialog cannot be confirmed yet (None when it can)."""
        if self.plan.total <= 0:
            return "None of the selected payments is parked"
        if self.plan.action is Action.CANCEL and not self.reason_edit.text().strip():
            return "Give a reason to cancel: it is recorded in the audit trail"
        if self.edit_check.isChecked() and self._body_error is not None:
            return "The edited body is not valid JSON"
        if self.forced and not self.reason_edit.text().strip():
            return "Say why you send past the replay gate: the note is audited"
        if self.pace_chooser is not None:
            return self.pace_chooser.problem()
        return None

    def pace(self) -> Pace | None:
        """The chosen pace of the job (None: full speed)."""
        return self.pace_chooser.pace() if self.pace_chooser is not None else None

    @property
    def forced(self) -> bool:
        """Whether the operator chose to send what the replay gate holds back."""
        return bool(self.held_back) and self.force_check.isChecked()

    def is_valid(self) -> bool:
        return self.problem() is None

    def summary_text(self) -> str:
        """What the dialog says will happen, as plain text (the headline and the notes)."""
        lines = [
            self.plan.describe(self.delay_s())  # masked piece by piece, the id whole
            if self.plan.total
            else self.headline_label.text(),
            self.plan.consequence(),
        ]
        if self.plan.skipped:
            lines.append(self.plan.skipped_line())
        if self.held_back:
            lines.append(held_back_text(self.held_back))
        if self.pace_chooser is not None and self.pace_chooser.paced:
            lines.append(f"Paced: {self.pace_chooser.describe()}")
        return "\n".join(lines)

    def request(self) -> ActionRequest | None:
        """What the operator confirmed; None until the dialog is accepted."""
        return self._request

    def build_request(self) -> ActionRequest:
        """The request as the dialog now stands (valid or not)."""
        edited = self._edited if self.edit_check.isChecked() and self.can_edit_body else None
        return ActionRequest(
            action=self.plan.action,
            reason=self.reason_edit.text().strip(),
            delay_s=self.delay_s(),
            edited_body=edited,
        )

    # -- slots ---------------------------------------------------------------------------

    @Slot(int)
    def on_delay_changed(self, index: int) -> None:
        self.custom_delay_spin.setVisible(self.delay_combo.itemData(index) is None)
        self._refresh()

    @Slot(bool)
    def on_force_toggled(self, checked: bool) -> None:
        self.reason_edit.setPlaceholderText(
            "Why the replay gate is overridden (required)"
            if checked
            else "A note for the audit trail (optional)"
        )
        if checked:
            self.reason_edit.setFocus()
        self._refresh()

    @Slot(bool)
    def on_edit_toggled(self, checked: bool) -> None:
        self.editor_box.setVisible(checked)
        if checked and self._document is not None and not self.body_edit.toPlainText():
            self.body_edit.setPlainText(self._document.text)
            self.body_edit.moveCursor(QTextCursor.MoveOperation.Start)
        if checked:
            self.validate_body()
            self.body_edit.setFocus()
            self.resize(max(self.width(), 640), max(self.height(), 620))
        self._refresh()

    @Slot()
    def on_body_text_changed(self) -> None:
        if len(self.body_edit.toPlainText()) <= LIVE_VALIDATION_CHARS:
            self.validate_body()
        else:
            self._validate_timer.start()

    @Slot()
    def validate_body(self) -> None:
        """Check the edited body now: show where it is invalid, or that it is fine."""
        self._validate_timer.stop()
        document = self._document
        if document is None:
            return
        text = self.body_edit.toPlainText()
        selections: list[QTextEdit.ExtraSelection] = []
        try:
            value = unmask_edit(text, document)
        except json.JSONDecodeError as exc:
            self._body_error = f"Line {exc.lineno}, column {exc.colno}: {exc.msg}"
            self._edited = None
            self._set_body_status(self._body_error, "ValidationError")
            selections.append(self._error_selection(exc.lineno))
        except RecursionError:
            self._body_error = "Nested too deeply to check"
            self._edited = None
            self._set_body_status(self._body_error, "ValidationError")
        else:
            self._body_error = None
            if value == document.value:
                self._edited = None
                self._set_body_status("Valid JSON · unchanged", "ValidationOk")
            else:
                self._edited = dumps_compact(value)
                leftovers = leftover_masks(value, document)
                if leftovers:
                    shown = ", ".join(leftovers[:3])
                    self._set_body_status(
                        f"Valid JSON · changed masked values are sent as typed: {shown}",
                        "ValidationWarn",
                    )
                else:
                    self._set_body_status("Valid JSON · edited", "ValidationOk")
        self.body_edit.setExtraSelections(selections)
        self._refresh()

    def _error_selection(self, line: int) -> QTextEdit.ExtraSelection:
        selection = QTextEdit.ExtraSelection()
        colour = QColor(colors.RED)
        colour.setAlpha(60)
        selection.format.setBackground(colour)
        selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        block = self.body_edit.document().findBlockByLineNumber(max(line - 1, 0))
        selection.cursor = QTextCursor(block)
        return selection

    def _set_body_status(self, text: str, name: str) -> None:
        self.body_status_label.setText(text)
        if self.body_status_label.objectName() != name:
            self.body_status_label.setObjectName(name)
            repolish(self.body_status_label)

    def _refresh(self) -> None:
        plan = self.plan
        delay = self.delay_s()
        verb = plan.action.label
        if plan.total <= 0:
            self.headline_label.setText(f"Nothing to {plan.action}")
        else:
            # no line break inside "812 → payments.process"
            text = plan.describe(delay).replace(" → ", "\u00a0→\u00a0")
            if delay > 0:
                when = format_delay(delay)
                text = text.replace(f" after {when}", " after\u00a0" + when.replace(" ", "\u00a0"))
            self.headline_label.setText(text)
        if plan.action is Action.RETRY:
            self.delay_hint.setText(
                "sent right away"
                if delay <= 0
                else f"waits {format_delay(delay)} in a wait queue, then goes to its queue"
            )
        if plan.action is Action.CANCEL:  # says what it destroys: never a bare "Cancel"
            self.ok_button.setText(f"{verb} {plural(plan.total, 'payment')}")
        else:
            count = f" {plan.total:,}" if plan.total > 1 else ""
            paced = self.pace_chooser is not None and self.pace_chooser.paced
            self.ok_button.setText(f"{verb}{count}" + (" paced" if paced else ""))
        problem = self.problem()
        self.ok_button.setEnabled(problem is None)
        self.ok_button.setToolTip(problem or "")
        # the missing reason is said under its field (the body's problems under the editor)
        missing_reason = (plan.action is Action.CANCEL or self.forced) and not (
            self.reason_edit.text().strip()
        )
        self.problem_label.setText(problem if missing_reason and problem else "")
        self.problem_label.setVisible(bool(self.problem_label.text()))
        pace_problem = self.pace_chooser.problem() if self.pace_chooser is not None else None
        self.pace_problem_label.setText(pace_problem or "")
        self.pace_problem_label.setVisible(pace_problem is not None)

    # -- QDialog -------------------------------------------------------------------------

    def accept(self) -> None:
        """Confirm, but only when valid (Enter on an invalid form does nothing)."""
        if self.edit_check.isChecked():
            self.validate_body()
        if not self.is_valid():
            needs_note = self.plan.action is Action.CANCEL or self.forced
            if needs_note and not self.reason_edit.text().strip():
                self.reason_edit.setFocus(Qt.FocusReason.OtherFocusReason)
            elif self.pace_chooser is not None and self.pace_chooser.problem():
                chooser = self.pace_chooser
                field = chooser.rate_edit if chooser.rate_problem() else chooser.canary_spin
                field.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        self._request = self.build_request()
        super().accept()
        self.confirmed.emit(self._request)
