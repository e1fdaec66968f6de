"""The Twisted client: ``client.connect(reactor, "tcp:host:port")`` returns a Deferred KVClient.

Owns the pipelined RESP client protocol, its deadlines and the per-command API; imports wire and
loop. ``from kvtwist import client`` is the documented entry point, so the API is named here.
"""

from kvtwist.client.kv import (
    ClientDisconnected, KVClient, NotAnswered, ReplyError, RequestTimeout, RespClientFactory,
    RespClientProtocol, UnexpectedReply, connect, endpoint_from_string)

__all__ = [
    "ClientDisconnected", "KVClient", "NotAnswered", "ReplyError", "RequestTimeout",
    "RespClientFactory", "RespClientProtocol", "UnexpectedReply", "connect",
    "endpoint_from_string",
]
