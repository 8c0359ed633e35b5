"""The web dashboard for operators and marketers, served under ``/dashboard``.

``mount_dashboard(app)`` adds it to the application built by ``personify.api.app.create_app``.
"""

from personify.dashboard.mount import mount_dashboard

__all__ = ["mount_dashboard"]
