"""Problems are reported once per key and resolved with the same text."""

from __future__ import annotations

from services.problems import ProblemReporter


def test_report_once_and_resolve_with_the_same_text() -> None:
    seen: list[tuple[str, str]] = []
    reporter = ProblemReporter(
        lambda text: seen.append(("problem", text)), lambda text: seen.append(("resolved", text))
    )
    reporter.report("q", "queue 'q' not found")
    reporter.report("q", "queue 'q' not found")  # still the same problem: not repeated
    assert reporter.is_active("q")
    reporter.resolve("q")
    reporter.resolve("q")  # nothing left to resolve
    reporter.resolve("other")
    assert seen == [("problem", "queue 'q' not found"), ("resolved", "queue 'q' not found")]
    assert reporter.problems == ["queue 'q' not found"]


def test_a_failing_callback_does_not_break_the_reporter() -> None:
    def explode(text: str) -> None:
        raise RuntimeError(text)

    reporter = ProblemReporter(explode, explode)
    reporter.report("k", "boom")
    reporter.resolve("k")
    assert not reporter.is_active("k")
