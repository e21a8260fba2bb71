"""The workbench's Redis scripts: one ``.lua`` file each beside this module, and their loader.

Lua has no include, so a script is files put together in order. ``now.lua``
sets ``now`` (Redis's clock in epoch milliseconds) for the files after it, and
a file can come in as a local Lua function whose parameters ``KEYS`` and
``ARGV`` shadow the globals (``script(name, clock=True, functions=[...])``). The
ledger's window scripts (``claim_many``, ``finish_many``) carry the one-entry
compare-and-set of ``claim.lua`` and ``finish.lua`` inline, for speed: a change
to the state machine is made in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources


@cache
def source(name: str) -> str:
    """The text of ``<name>.lua``."""
    return resources.files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def script(name: str, *, clock: bool = False, functions: Sequence[str] = ()) -> str:
    """``<name>.lua`` ready to run: after ``now.lua`` with ``clock``, and after each of
    ``functions`` as ``local function <f>(KEYS, ARGV) ... end``."""
    parts = [source("now")] if clock else []
    parts += [f"local function {f}(KEYS, ARGV)\n{source(f)}end\n" for f in functions]
    parts.append(source(name))
    return "".join(parts)
