"""``python -m app``: the same as the ``payops`` command."""

from app.cli.main import main

if __name__ == "__main__":  # the live flow's process (spawn) imports this as __mp_main__
    raise SystemExit(main())
