"""The package version, in one place: read by the build (statically) and by ``--version``."""

__version__ = "0.2.0"
