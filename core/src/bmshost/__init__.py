"""bmshost: a plugin-based battery-management-system host."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bmshost")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = ["__version__"]
