"""Static resources: default config, stylesheet, icons, demo topology."""

from importlib.resources import files
from pathlib import Path


def resource_path(name: str) -> Path:
    """Path of a file shipped in this package."""
    return Path(str(files(__name__).joinpath(name)))
