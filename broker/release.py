"""The broker's version, as its installed distribution names it."""

from importlib.metadata import PackageNotFoundError, version


def release() -> str:
    try:
        return version("accessbroker")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
