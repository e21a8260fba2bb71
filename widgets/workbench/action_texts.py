"""What the Failed payments page calls its actions: buttons, menus, shortcuts, dialog titles."""

from __future__ import annotations

from typing import Final

READ_ONLY_TIP: Final = "read-only profile"
ACTION_NAMES: Final[tuple[str, ...]] = ("requeue", "retry", "cancel")
ACTION_TEXT: Final[dict[str, tuple[str, str, str]]] = {
    # name: (button text, shortcut, what it does)
    "requeue": ("Requeue", "Ctrl+R", "Send back, unchanged, to the queue it died in"),
    "retry": ("Retry…", "Ctrl+Shift+R", "Process again, optionally delayed or with an edited body"),
    "cancel": ("Cancel…", "Delete", "Cancel the payment, with a reason"),
}
ALL_TEXT: Final[dict[str, str]] = {
    "requeue": "Requeue all",
    "retry": "Retry all",
    "cancel": "Cancel all",
}
VERBS: Final = {"requeue": "Requeue", "retry": "Retry", "cancel": "Cancel"}
ONGOING: Final = {"requeue": "Requeueing", "retry": "Retrying", "cancel": "Cancelling"}
