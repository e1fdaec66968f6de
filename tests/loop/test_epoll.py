"""Tests for kvtwist.loop.epoll: the reactor's event dispatch, its logging, and its installation."""

from __future__ import annotations

import socket
import subprocess
import sys

from twisted.internet import protocol
from twisted.internet.error import ConnectionDone
from twisted.python import log
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from kvtwist.loop import epoll
from tests.procs import ROOT



class Echo(protocol.Protocol):
    """Echoes; ``boom`` raises from dataReceived; records how the connection ended."""

    def __init__(self, record: dict) -> None:
        self.record = record

    def connectionMade(self) -> None:
        self.record["protocol"] = self

    def dataReceived(self, data: bytes) -> None:
        if data == b"boom":
            raise ValueError("boom")
        if "on_data" in self.record:
            self.record["on_data"](data)
        self.record["got"] = self.record.get("got", b"") + data
        self.transport.write(data)

    def connectionLost(self, reason) -> None:
        self.record["lost"] = reason


class Dispatch(SynchronousTestCase):
    """A KVEPollReactor that is not installed, driven one poll at a time over loopback."""

    def setUp(self) -> None:
        if not hasattr(__import__("select"), "epoll"):
            raise SkipTest("epoll is Linux-only")
        self.reactor = epoll.KVEPollReactor()
        self.addCleanup(self._close_reactor)
        self.record = {}
        factory = protocol.Factory.forProtocol(lambda: Echo(self.record))
        self.port = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.client = socket.create_connection(("127.0.0.1", self.port.getHost().port))
        self.addCleanup(self.client.close)
        self.client.settimeout(10)
        self.spin_until(lambda: "protocol" in self.record)

    def _close_reactor(self) -> None:
        for selectable in set(self.reactor.getReaders() + self.reactor.getWriters()):
            self.reactor.removeReader(selectable)
            self.reactor.removeWriter(selectable)
            sock = getattr(selectable, "socket", None)
            if sock is not None:
                sock.close()
        self.reactor.waker.connectionLost(None)
        self.reactor._poller.close()

    def spin_until(self, done, rounds: int = 200) -> None:
        for _ in range(rounds):
            if done():
                return
            self.reactor.runUntilCurrent()
            self.reactor.doIteration(0.05)
        self.fail("the reactor never got there")

    def test_plain_read_is_dispatched(self) -> None:
        """A read event reaches dataReceived and the reply goes out."""
        self.client.sendall(b"hello")
        self.spin_until(lambda: self.record.get("got") == b"hello")
        self.spin_until(lambda: not self.reactor.getWriters())
        self.assertEqual(self.client.recv(100), b"hello")

    def test_plain_read_skips_log_context(self) -> None:
        """A plain read is dispatched without log.callWithLogger (the point of this reactor)."""
        calls = []
        real = log.callWithLogger
        self.patch(log, "callWithLogger", lambda *a, **kw: (calls.append(a[0]), real(*a, **kw)))
        self.client.sendall(b"hello")
        self.spin_until(lambda: self.record.get("got") == b"hello")
        self.assertNotIn(self.record["protocol"].transport, calls)

    def test_exception_is_logged_with_prefix_and_disconnects(self) -> None:
        """An exception from doRead is logged under the connection's log prefix and ends it."""
        events = []
        log.addObserver(events.append)
        self.addCleanup(log.removeObserver, events.append)
        self.client.sendall(b"boom")
        self.spin_until(lambda: "lost" in self.record)
        errors = [e for e in events if e.get("isError")]
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["system"], self.record["protocol"].transport.logPrefix())
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(self.client.recv(100), b"")

    def test_hangup_takes_epoll_path(self) -> None:
        """A peer's close (a hang-up event, not a plain read) still ends the connection."""
        self.client.close()
        self.spin_until(lambda: "lost" in self.record)
        self.record["lost"].trap(ConnectionDone)

    def test_turn_end_calls_follow_every_event_of_the_poll(self) -> None:
        """Calls asked for while a poll's events are handled run in that poll, after all of them."""
        order = []
        polls = [0]

        def on_data(data: bytes) -> None:
            order.append((polls[0], "read", data))
            self.reactor.callAtTurnEnd(lambda: order.append((polls[0], "end", data)))

        self.record["on_data"] = on_data
        other = socket.create_connection(("127.0.0.1", self.port.getHost().port))
        self.addCleanup(other.close)
        self.spin_until(lambda: len(self.reactor.getReaders()) == 4)  # port, waker, 2 conns
        self.client.sendall(b"a")
        other.sendall(b"b")
        for _ in range(200):  # polls only: a callLater(0) would not run here
            if len(order) == 4:
                break
            polls[0] += 1
            self.reactor.doIteration(0.05)
        for poll in set(p for p, _, _ in order):
            kinds = [kind for p, kind, _ in order if p == poll]
            self.assertEqual(kinds, sorted(kinds, reverse=True))  # reads, then ends
        reads = [data for _, kind, data in order if kind == "read"]
        ends = [data for _, kind, data in order if kind == "end"]
        self.assertEqual((sorted(reads), ends), ([b"a", b"b"], reads))

    def test_turn_end_call_may_ask_for_another_and_errors_are_logged(self) -> None:
        """A failing call is logged without stopping the rest; a call may add one more."""
        ran = []

        def on_data(data: bytes) -> None:
            self.reactor.callAtTurnEnd(lambda: 1 / 0)
            self.reactor.callAtTurnEnd(
                lambda: self.reactor.callAtTurnEnd(lambda: ran.append("second")))

        self.record["on_data"] = on_data
        self.client.sendall(b"x")
        self.spin_until(lambda: ran)
        self.assertEqual(ran, ["second"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_turn_end_outside_a_poll_is_call_later(self) -> None:
        """Asked for outside a poll's dispatch, the call is a callLater(0)."""
        ran = []
        self.reactor.callAtTurnEnd(lambda: ran.append(True))
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.reactor.runUntilCurrent()
        self.assertEqual(ran, [True])

    def test_lost_descriptor_disconnects(self) -> None:
        """A descriptor whose fileno() is -1 is disconnected, as EPollReactor does."""
        transport = self.record["protocol"].transport
        real = transport.fileno
        self.client.sendall(b"x")
        transport.fileno = lambda: -1
        self.reactor._read(transport)
        transport.fileno = real
        self.assertIn("File descriptor lost", str(self.record["lost"].value))


class Installation(SynchronousTestCase):
    """install_default: the servers' option parsing picks the reactor unless one was chosen."""

    def reactor_after(self, prelude: str) -> str:
        code = (prelude + "from kvtwist.serve import tap; tap.Options().parseOptions([]); "
                "from twisted.internet import reactor; print(type(reactor).__name__)")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             timeout=60, check=True)
        return out.stdout.decode().strip()

    def test_parsing_installs_kvepoll(self) -> None:
        """Parsing kvstore's options in a process with no reactor yet installs KVEPollReactor."""
        self.assertEqual(self.reactor_after(""), "KVEPollReactor")

    def test_chosen_reactor_is_kept(self) -> None:
        """A reactor installed first (as twistd --reactor does) is left in place."""
        prelude = "from twisted.internet import pollreactor; pollreactor.install(); "
        self.assertEqual(self.reactor_after(prelude), "PollReactor")

    def test_installed_reactor_refuses(self) -> None:
        """install_default does nothing when a reactor is already installed."""
        self.assertIn("twisted.internet.reactor", sys.modules)
        self.assertFalse(epoll.install_default())
