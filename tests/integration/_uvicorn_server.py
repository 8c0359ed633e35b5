"""Re-export of :func:`personify.testing.live_server.running` for the integration tests."""

from personify.testing.live_server import running

__all__ = ["running"]
