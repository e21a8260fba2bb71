"""Where the repository is, for tests that start a subprocess in it."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
