"""Problems the live services report to the UI, once each, and their resolution."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TextCallback = Callable[[str], None]


class ProblemReporter:
    """Reports a problem once per key while it lasts, and says when it has gone.

    ``on_problem(text)`` is called when a key's problem first appears (or its
    text changes); ``on_resolved(text)`` with the same text when it clears.
    ``problems`` keeps the most recent texts, for tests and logs.
    """

    def __init__(
        self,
        on_problem: TextCallback | None = None,
        on_resolved: TextCallback | None = None,
        keep: int = 100,
    ) -> None:
        self._on_problem = on_problem
        self._on_resolved = on_resolved
        self._keep = keep
        self._active: dict[str, str] = {}
        self.problems: list[str] = []

    def report(self, key: str, text: str) -> None:
        """Report ``text`` about ``key`` unless the same is already reported."""
        if self._active.get(key) == text:
            return
        self._active[key] = text
        log.warning("%s", text)
        self.problems.append(text)
        del self.problems[: -self._keep]
        self._call(self._on_problem, text)

    def resolve(self, key: str) -> None:
        """The problem about ``key`` has gone (nothing happens when there was none)."""
        text = self._active.pop(key, None)
        if text is not None:
            log.info("resolved: %s", text)
            self._call(self._on_resolved, text)

    def is_active(self, key: str) -> bool:
        """Whether a problem about ``key`` is reported and not resolved."""
        return key in self._active

    @staticmethod
    def _call(callback: TextCallback | None, text: str) -> None:
        if callback is None:
            return
        try:
            callback(text)
        except Exception:
            log.exception("problem callback failed")
