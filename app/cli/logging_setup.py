"""Logging for the console and the CLI, with card numbers masked in every record."""

from __future__ import annotations

import logging
import sys

from services.masking.text import MaskingFilter


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr with masking; INFO by default, DEBUG when verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("aiormq", "aio_pika", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The AMQP link reports connection failures itself, once per attempt, with the reason.
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
