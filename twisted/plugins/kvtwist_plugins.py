"""twistd plugins for kvtwist: ``twistd kvstore``, ``twistd kvproxy`` and ``--reactor kvepoll``."""

from twisted.application.reactors import Reactor
from twisted.application.service import ServiceMaker

kvstore = ServiceMaker(
    "kvtwist key-value store", "kvtwist.serve.tap",
    "A durable key-value server speaking telnet text, RESP2 and JSON lines.", "kvstore")
kvproxy = ServiceMaker(
    "kvtwist caching proxy", "kvtwist.proxy.tap",
    "A caching proxy in front of kvstore or any Redis server.", "kvproxy")
kvepoll = Reactor(
    "kvepoll", "kvtwist.loop.epoll",
    "epoll, plain reads dispatched without a log context (kvstore's and kvproxy's default)")
