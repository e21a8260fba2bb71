"""The AMQP headers the console writes on the messages it publishes, for every reader.

The workbench's actions stamp them; the live flow reads them (a replayed
payment is recognised by them), and so may the services downstream.
"""

from __future__ import annotations

from typing import Final

ACTION_ID_HEADER: Final = "payops-action-id"
"""The header naming the action (one per entry per action) on every message an action
publishes: downstream consumers can de-duplicate on it, the publisher matches returns to
items by it, and the live flow tells a replayed payment by it."""
