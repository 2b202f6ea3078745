"""The test suite runs offline: outbound connections are refused (see conftest.py)."""

import socket

import pytest


def test_outbound_connections_are_refused():
    with pytest.raises(OSError, match="network access is disabled"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_loopback_stays_open():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.close()
    server.close()
