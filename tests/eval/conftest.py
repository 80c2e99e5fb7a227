"""Fixtures for the evaluation tests: the scripted loopback chat server (vlmrl.testing.scripted_judge)."""

from __future__ import annotations

from typing import Any

import pytest

from vlmrl.testing.scripted_judge import ChatServer, Responder


@pytest.fixture
def chat_server():
    """Factory: chat_server(respond, delay_s=...) -> ChatServer (closed after the test)."""
    servers: list[ChatServer] = []

    def make(respond: Responder, **kwargs: Any) -> ChatServer:
        server = ChatServer(respond, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
