"""Tests for kvtwist.proxy.front: forwarded replies filling their place in the client's
replies without a callback chain."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.front import ProxyFactory, ProxyProtocol, Reply, answer
from kvtwist.wire.replies import OK, Error


class ScriptedSession:
    """A session answering each command with the next of ``replies``."""

    authenticated = True
    closing = False
    after_reply = ()
    protocol = 2

    def __init__(self, replies) -> None:
        self.replies = replies

    def execute(self, argv):
        return self.replies.pop(0)


class ScriptedStore:
    """A store whose one session is ``session``."""

    def __init__(self, session) -> None:
        self.session = session

    def new_session(self, peer: str = ""):
        return self.session

    def drop_session(self, session) -> None:
        pass


GET = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


class FrontTests(SynchronousTestCase):
    """ProxyProtocol hands Reply values their place; answers leave in request order."""

    def connect(self, replies):
        front = ProxyFactory(ScriptedStore(ScriptedSession(replies))).buildProtocol(None)
        self.assertIsInstance(front, ProxyProtocol)
        transport = StringTransport()
        front.makeConnection(transport)
        return front, transport

    def test_answersInRequestOrder(self) -> None:
        """Replies answered out of order still reach the client in request order, and
        the Reply gets no callback."""
        first, second = Reply(), Reply()
        front, transport = self.connect([first, OK, second])
        front.dataReceived(GET * 3)
        self.assertIsNotNone(first.sink)
        second.answer(b"two")
        self.assertEqual(transport.value(), b"")
        first.answer(None)
        self.assertEqual(transport.value(), b"$-1\r\n+OK\r\n$3\r\ntwo\r\n")
        self.assertTrue(first.called)

    def test_errorReply(self) -> None:
        """An error value is rendered as the error it is."""
        reply = Reply()
        front, transport = self.connect([reply])
        front.dataReceived(GET)
        reply.answer(Error("ERR backend timeout"))
        self.assertEqual(transport.value(), b"-ERR backend timeout\r\n")

    def test_replyWithCallbacksIsADeferred(self) -> None:
        """A Reply someone added a callback to goes through its callbacks (the front end
        adds its own after them)."""
        reply = Reply()
        reply.addCallback(lambda value: value + b"!")
        front, transport = self.connect([reply])
        front.dataReceived(GET)
        reply.answer(b"v")
        self.assertEqual(transport.value(), b"$2\r\nv!\r\n")

    def test_callbackAddedAfterThePlaceWasTaken(self) -> None:
        """A callback added once the front end holds the Reply's place still runs, with
        the reply value, and the client gets the value itself."""
        reply = Reply()
        front, transport = self.connect([reply])
        front.dataReceived(GET)
        self.assertIsNotNone(reply.sink)
        seen = []
        reply.addBoth(seen.append)
        reply.answer(b"v")
        self.assertEqual((transport.value(), seen), (b"$1\r\nv\r\n", [b"v"]))

    def test_everyWayOfChainingMarksIt(self) -> None:
        """addCallback, addErrback, addBoth and addCallbacks each mark a Reply chained."""
        for add in ("addCallback", "addErrback", "addBoth"):
            reply = Reply()
            getattr(reply, add)(lambda result: result)
            self.assertTrue(reply.chained, add)
        reply = Reply()
        reply.addCallbacks(lambda result: result, lambda failure: failure)
        self.assertTrue(reply.chained)
        self.assertFalse(Reply().chained)

    def test_answerWithoutFrontEnd(self) -> None:
        """``answer`` fires a Reply no front end holds, and a plain Deferred."""
        reply, plain = Reply(), Deferred()
        answer(reply, b"a")
        answer(plain, b"b")
        self.assertEqual((self.successResultOf(reply), self.successResultOf(plain)),
                         (b"a", b"b"))
