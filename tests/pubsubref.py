"""Transcripts of pub/sub scripts over several connections, from kvstore and a redis-server.

A script is a list of ``(connection number, argv)`` steps. After each step every
connection is sent ``PING <BARRIER>`` and read up to that reply, so each transcript entry
holds exactly the bytes (replies and pushes) a connection got because of that step, with
no waiting on time: Redis queues a message for its subscribers before it answers PUBLISH.
"""

from __future__ import annotations

import socket

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from kvtwist.engine.store import Store
from kvtwist.serve.factory import KVFactory

BARRIER = b"sync-barrier"
_END = b"$%d\r\n%s\r\n" % (len(BARRIER), BARRIER)


def _request(argv) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


def redis_transcript(port: int, connections: int, script) -> list:
    """Run ``script`` against the server on ``port``; return ``[(step, conn, bytes)]``."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10)
             for _ in range(connections)]
    try:
        transcript = []
        for step, (index, argv) in enumerate(script):
            socks[index].sendall(_request(argv))
            for number, sock in enumerate(socks):
                sock.sendall(_request([b"PING", BARRIER]))
                data = b""
                while not data.endswith(_END):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("redis-server closed the connection")
                    data += chunk
                transcript.append((step, number, data))
        return transcript
    finally:
        for sock in socks:
            sock.close()


def kvstore_transcript(connections: int, script, store=None) -> list:
    """Run ``script`` through kvstore's real front end; return ``[(step, conn, bytes)]``."""
    store = store if store is not None else Store(Clock())
    factory = KVFactory(store)
    pairs = []
    for _ in range(connections):
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        pairs.append((protocol, transport))
    transcript = []
    for step, (index, argv) in enumerate(script):
        pairs[index][0].dataReceived(_request(argv))
        for number, (protocol, transport) in enumerate(pairs):
            protocol.dataReceived(_request([b"PING", BARRIER]))
            transcript.append((step, number, transport.value()))
            transport.clear()
    return transcript
