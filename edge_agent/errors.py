"""Domain errors the edge agent raises at its boundaries.

Each carries a message a store installer can act on; the CLI prints it without a traceback.
"""


class RetailCVError(Exception):
    """Base class for errors that should reach the user as a one-line message."""


class ConfigError(RetailCVError):
    """The store configuration is missing, unreadable or invalid."""


class SourceError(RetailCVError):
    """A camera source (file, stream, USB device) cannot be opened or decoded."""


class ModelError(RetailCVError):
    """A model file is missing, unreadable, or its layout cannot be determined."""
