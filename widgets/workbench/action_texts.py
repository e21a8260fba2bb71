"""What the Failed payments page calls its actions: buttons, menus, shortcuts, dialog titles."""

from __future__ import annotations

from typing import Final

from services.workbench.actions.names import Action

READ_ONLY_TIP: Final = "read-only profile"
ACTION_TEXT: Final[dict[Action, tuple[str, str, str]]] = {
    # action: (button text, shortcut, what it does); its words are the Action's
    Action.REQUEUE: ("Requeue", "Ctrl+R", "Send back, unchanged, to the queue it died in"),
    Action.RETRY: (
        "Retry…",
        "Ctrl+Shift+R",
        "Process again, optionally delayed or with an edited body",
    ),
    Action.CANCEL: ("Cancel…", "Delete", "Cancel the payment, with a reason"),
}
