"""twistd plugins for kvtwist: ``twistd kvstore`` and ``twistd kvproxy``."""

from twisted.application.service import ServiceMaker

kvstore = ServiceMaker(
    "kvtwist key-value store", "kvtwist.tap",
    "A durable key-value server speaking telnet text, RESP2 and JSON lines.", "kvstore")
kvproxy = ServiceMaker(
    "kvtwist caching proxy", "kvtwist.proxytap",
    "A caching proxy in front of kvstore or any Redis server.", "kvproxy")
