"""Tests for kvtwist.engine.tracking: CLIENT TRACKING BCAST invalidation messages."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import tracking
from kvtwist.engine.store import Store
from kvtwist.wire.replies import NIL_ARRAY, OK, Error
from kvtwist.serve.factory import KVFactory

MESSAGE = [b"message", tracking.CHANNEL]


class TrackingTests(SynchronousTestCase):
    """A session redirecting its invalidations to a subscribed session (Redis RESP2 style)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.listener = self.store.new_session("listener")
        self.pushed = []
        self.listener.push = self.pushed.append
        self.writer = self.store.new_session("writer")
        self.writer.push = lambda reply: None

    def track(self, *options) -> None:
        argv = [b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % self.listener.id, b"BCAST"]
        self.assertEqual(self.listener.execute(argv + list(options)), OK)
        self.assertEqual(self.listener.execute([b"SUBSCRIBE", tracking.CHANNEL]),
                         [b"subscribe", tracking.CHANNEL, 1])

    def test_writesInvalidate(self) -> None:
        """Each key written is sent at once, before the write's reply could go out."""
        self.track()
        self.writer.execute([b"SET", b"k", b"v"])
        self.assertEqual(self.pushed, [MESSAGE + [[b"k"]]])
        self.writer.execute([b"MSET", b"a", b"1", b"k", b"2"])
        self.assertEqual(self.pushed[1:], [MESSAGE + [[b"a"]], MESSAGE + [[b"k"]]])

    def test_everyWriteKind(self) -> None:
        """DEL, INCR, APPEND, EXPIRE and PERSIST all invalidate their key."""
        self.track()
        self.writer.execute([b"SET", b"a", b"1"])
        self.clock.advance(0)
        for argv in ([b"INCR", b"a"], [b"APPEND", b"a", b"x"], [b"EXPIRE", b"a", b"100"],
                     [b"PERSIST", b"a"], [b"DEL", b"a"]):
            del self.pushed[:]
            self.writer.execute(argv)
            self.clock.advance(0)
            self.assertEqual(self.pushed, [MESSAGE + [[b"a"]]], argv)

    def test_readsDoNotInvalidate(self) -> None:
        """Reads send nothing."""
        self.track()
        self.writer.execute([b"GET", b"k"])
        self.writer.execute([b"EXISTS", b"k"])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [])

    def test_flushSendsNil(self) -> None:
        """A flush sends the message with a nil payload."""
        self.track()
        self.writer.execute([b"FLUSHALL"])
        self.assertEqual(self.pushed, [MESSAGE + [None]])

    def test_expiryInvalidates(self) -> None:
        """A key reaching its expiry time is invalidated then."""
        self.track()
        self.writer.execute([b"SET", b"k", b"v", b"PX", b"100"])
        del self.pushed[:]
        self.clock.advance(0.1)
        self.assertEqual(self.pushed, [])
        self.clock.advance(0.001)
        self.assertEqual(self.pushed, [MESSAGE + [[b"k"]]])
        self.assertIsNone(self.writer.execute([b"GET", b"k"]))

    def test_prefixes(self) -> None:
        """With PREFIX only matching keys are sent."""
        self.track(b"PREFIX", b"user:")
        self.writer.execute([b"SET", b"user:1", b"v"])
        self.writer.execute([b"SET", b"other", b"v"])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [MESSAGE + [[b"user:1"]]])

    def test_noloop(self) -> None:
        """With NOLOOP the tracking session's own writes are not sent back to it."""
        tracker = self.store.new_session("tracker")
        argv = [b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % self.listener.id,
                b"BCAST", b"NOLOOP"]
        self.assertEqual(tracker.execute(argv), OK)
        self.listener.execute([b"SUBSCRIBE", tracking.CHANNEL])
        tracker.execute([b"SET", b"mine", b"v"])
        self.writer.execute([b"SET", b"theirs", b"v"])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [MESSAGE + [[b"theirs"]]])

    def test_unsubscribedTargetGetsNothing(self) -> None:
        """Without a subscription to the channel, the redirect target gets nothing."""
        argv = [b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % self.listener.id, b"BCAST"]
        self.listener.execute(argv)
        self.writer.execute([b"SET", b"k", b"v"])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [])

    def test_off(self) -> None:
        """CLIENT TRACKING off stops messages and unwraps the log."""
        self.track()
        # A RESP2 subscribed client may not run CLIENT (as in Redis): leave the channel first.
        self.listener.execute([b"UNSUBSCRIBE"])
        self.assertEqual(self.listener.execute([b"CLIENT", b"TRACKING", b"off"]), OK)
        self.listener.execute([b"SUBSCRIBE", tracking.CHANNEL])
        self.assertEqual(self.store.keyspace.log, self.store.journal.append)
        self.writer.execute([b"SET", b"k", b"v"])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [])

    def test_trackingClientGone(self) -> None:
        """When the tracking session goes away its tracking ends."""
        tracker = self.store.new_session("tracker")
        tracker.execute([b"CLIENT", b"TRACKING", b"on", b"REDIRECT",
                         b"%d" % self.listener.id, b"BCAST"])
        self.listener.execute([b"SUBSCRIBE", tracking.CHANNEL])
        self.store.drop_session(tracker)
        self.writer.execute([b"SET", b"k", b"v"])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [])
        self.assertEqual(self.store.keyspace.log, self.store.journal.append)

    def test_errors(self) -> None:
        """Bad CLIENT TRACKING requests get Redis's errors."""
        run = self.writer.execute
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"999", b"BCAST"]),
                         Error("ERR The client ID you want redirect to does not exist"))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"PREFIX", b"a"]),
                         Error("ERR PREFIX option requires BCAST mode to be enabled"))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"maybe"]), Error("ERR syntax error"))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"BCAST", b"BOGUS"]),
                         Error("ERR syntax error"))
        self.assertIn("BCAST", run([b"CLIENT", b"TRACKING", b"on"]).message)
        self.assertIn("BCAST", run([b"CLIENT", b"TRACKING", b"on", b"BCAST",
                                    b"OPTIN"]).message)
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"x", b"BCAST"]),
                         Error("ERR value is not an integer or out of range"))
        self.assertIsInstance(run([b"CLIENT", b"TRACKING"]), Error)

    def test_noOverheadWithoutTracking(self) -> None:
        """Without tracking clients, the keyspace logs straight to the journal."""
        self.listener.execute([b"SUBSCRIBE", b"x"])
        self.assertEqual(self.store.keyspace.log, self.store.journal.append)


class WireTests(SynchronousTestCase):
    """Invalidation messages served through the real front end."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.factory = KVFactory(self.store)

    def connect(self):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_invalidationOverTheWire(self) -> None:
        """The invalidation message has Redis's exact RESP2 bytes."""
        listener, transport = self.connect()
        listener.dataReceived(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")
        client_id = int(transport.value()[1:-2])
        listener.dataReceived(
            b"*6\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\non\r\n$8\r\nREDIRECT\r\n"
            + b"$%d\r\n%d\r\n" % (len(str(client_id)), client_id) + b"$5\r\nBCAST\r\n")
        listener.dataReceived(b"*2\r\n$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n")
        transport.clear()
        writer, _ = self.connect()
        writer.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        self.assertEqual(transport.value(),
                         b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
                         b"*1\r\n$1\r\nk\r\n")
        transport.clear()
        writer.dataReceived(b"*1\r\n$8\r\nFLUSHALL\r\n")
        self.assertEqual(transport.value(),
                         b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n")



class StoreHookTests(SynchronousTestCase):
    """The Store keeps tracking wired when its journal changes."""

    def test_setJournalKeepsTracking(self) -> None:
        """After set_journal, writes still reach both the new journal and the tracker."""
        from kvtwist.engine.store import NullJournal

        clock = Clock()
        store = Store(clock)
        listener = store.new_session()
        pushed = []
        listener.push = pushed.append
        listener.execute([b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % listener.id,
                          b"BCAST"])
        listener.execute([b"SUBSCRIBE", tracking.CHANNEL])
        journal = NullJournal()
        store.set_journal(journal)
        store.new_session().execute([b"SET", b"k", b"v"])
        self.assertEqual(journal.appended, 1)
        self.assertEqual(pushed, [MESSAGE + [[b"k"]]])

    def test_stopLeavesNoTimer(self) -> None:
        """Turning tracking off cancels the expiry timer."""
        clock = Clock()
        store = Store(clock)
        session = store.new_session()
        session.execute([b"CLIENT", b"TRACKING", b"on", b"BCAST"])
        session.execute([b"SET", b"k", b"v", b"EX", b"10"])
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        session.execute([b"CLIENT", b"TRACKING", b"off"])
        self.assertEqual(clock.getDelayedCalls(), [])


class LogChainTests(SynchronousTestCase):
    """Tracking and WATCH both observe the store's effects without hiding them from each other."""

    def test_trackingAndWatch(self) -> None:
        """A write seen by tracking also aborts a transaction WATCHing its key, in any order."""
        clock = Clock()
        store = Store(clock)
        listener = store.new_session()
        pushed = []
        listener.push = pushed.append
        watcher = store.new_session()
        writer = store.new_session()
        track = [b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % listener.id, b"BCAST"]
        watcher.execute([b"WATCH", b"k"])
        self.assertEqual(listener.execute(track), OK)
        listener.execute([b"SUBSCRIBE", tracking.CHANNEL])
        writer.execute([b"SET", b"k", b"1"])
        watcher.execute([b"MULTI"])
        watcher.execute([b"GET", b"k"])
        self.assertIs(watcher.execute([b"EXEC"]), NIL_ARRAY)
        self.assertEqual(pushed[-1], MESSAGE + [[b"k"]])
        watcher.execute([b"WATCH", b"k"])
        tracker = store.tracker
        tracker.disable(listener)  # CLIENT TRACKING off (refused while subscribed in RESP2)
        writer.execute([b"SET", b"k", b"2"])
        watcher.execute([b"MULTI"])
        self.assertIs(watcher.execute([b"EXEC"]), NIL_ARRAY)
        self.assertEqual(len(pushed), 1)
        self.assertEqual(store.journal.appended, 2)
