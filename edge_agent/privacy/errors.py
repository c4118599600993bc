"""The privacy gate's domain error."""

from edge_agent.errors import RetailCVError


class PrivacyError(RetailCVError):
    """An image cannot be made privacy-safe, or something tried to go around the gate."""
