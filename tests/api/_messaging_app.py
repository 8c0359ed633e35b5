"""What the messaging API tests share: a local SMTP sink (``sink``) and the app's messaging
runtime on the module's ``clock`` fixture (``messaging``). A module imports the fixtures it uses:
``from _messaging_app import clocked_messaging, smtp_sink``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi import FastAPI

from personify.messaging.smtp_sink import SmtpSink
from personify.runtime.messaging import MessagingRuntime


@pytest.fixture(name="sink")
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture(name="messaging")
def clocked_messaging(app: FastAPI, clock: list[datetime]) -> MessagingRuntime:
    runtime: MessagingRuntime = app.state.runtime.messaging
    runtime.clock = lambda: clock[0]
    return runtime
