"""Tests for kvtwist.engine.tracking: CLIENT TRACKING, its modes and invalidation messages."""

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
        """The keys written in a turn go out as one message at the turn's end, sorted."""
        self.track()
        self.writer.execute([b"SET", b"k", b"v"])
        self.assertEqual(self.pushed, [])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [MESSAGE + [[b"k"]]])
        self.writer.execute([b"MSET", b"k", b"1", b"a", b"2"])
        self.writer.execute([b"SET", b"b", b"3"])
        self.clock.advance(0)
        self.assertEqual(self.pushed[1:], [MESSAGE + [[b"a", b"b", b"k"]]])

    def test_a_message_per_prefix(self) -> None:
        """A client with two prefixes gets a message for each, as Redis sends them."""
        self.track(b"PREFIX", b"a:", b"PREFIX", b"b:")
        self.writer.execute([b"MSET", b"b:1", b"1", b"a:1", b"1", b"c", b"1"])
        self.clock.advance(0)
        self.assertEqual(self.pushed, [MESSAGE + [[b"a:1"]], MESSAGE + [[b"b:1"]]])

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
        self.clock.advance(0)
        del self.pushed[:]
        self.clock.advance(0.1)
        self.assertEqual(self.pushed, [])
        self.clock.advance(0.001)
        self.clock.advance(0)
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
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"BCAST", b"OPTIN"]),
                         Error("ERR OPTIN and OPTOUT are not compatible with BCAST"))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"OPTIN", b"OPTOUT"]),
                         Error("ERR You can't specify both OPTIN mode and OPTOUT mode"))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"BCAST", b"PREFIX", b"ab",
                              b"PREFIX", b"a"]),
                         Error("ERR Prefix 'ab' overlaps with another provided prefix 'a'. "
                               "Prefixes for a single client must not overlap."))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % self.listener.id,
                              b"REDIRECT", b"%d" % self.listener.id]),
                         Error("ERR A client can only redirect to a single other client"))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on"]), OK)
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"BCAST"]),
                         Error("ERR You can't switch BCAST mode on/off before disabling "
                               "tracking for this client, and then re-enabling it with a "
                               "different mode."))
        self.assertEqual(run([b"CLIENT", b"CACHING", b"yes"]),
                         Error("ERR CLIENT CACHING YES is only valid when tracking is enabled "
                               "in OPTIN mode."))
        self.assertEqual(run([b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"x", b"BCAST"]),
                         Error("ERR value is not an integer or out of range"))
        self.assertIsInstance(run([b"CLIENT", b"TRACKING"]), Error)

    def test_noOverheadWithoutTracking(self) -> None:
        """Without tracking clients, the keyspace logs straight to the journal."""
        self.listener.execute([b"SUBSCRIBE", b"x"])
        self.assertEqual(self.store.keyspace.log, self.store.journal.append)


class DefaultModeTests(SynchronousTestCase):
    """Default mode: a client is told of changes to the keys it read, once per read."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.reader = self.store.new_session("reader")
        self.reader.execute([b"HELLO", b"3"])
        self.pushed = []
        self.reader.push = self.pushed.append
        self.writer = self.store.new_session("writer")
        self.writer.push = lambda reply: None

    def test_read_keys_are_invalidated_once(self) -> None:
        """A key read is invalidated on its next change only; a key not read is not."""
        self.assertEqual(self.reader.execute([b"CLIENT", b"TRACKING", b"on"]), OK)
        self.reader.execute([b"MGET", b"a", b"b"])
        self.writer.execute([b"SET", b"a", b"1"])
        self.writer.execute([b"SET", b"a", b"2"])
        self.writer.execute([b"SET", b"c", b"3"])
        self.assertEqual(self.pushed, [[b"invalidate", [b"a"]]])
        self.writer.execute([b"DEL", b"b"])
        self.assertEqual(self.pushed[1:], [])  # b did not exist: DEL changed nothing

    def test_optin_needs_caching_yes(self) -> None:
        """In OPTIN mode only the command after CLIENT CACHING yes is tracked."""
        self.reader.execute([b"CLIENT", b"TRACKING", b"on", b"OPTIN"])
        self.reader.execute([b"GET", b"a"])
        self.assertEqual(self.reader.execute([b"CLIENT", b"CACHING", b"yes"]), OK)
        self.reader.execute([b"GET", b"b"])
        self.reader.execute([b"GET", b"c"])
        for key in (b"a", b"b", b"c"):
            self.writer.execute([b"SET", key, b"1"])
        self.assertEqual(self.pushed, [[b"invalidate", [b"b"]]])

    def test_optout_caching_no_skips_one_command(self) -> None:
        """In OPTOUT mode every read is tracked except the one after CLIENT CACHING no."""
        self.reader.execute([b"CLIENT", b"TRACKING", b"on", b"OPTOUT"])
        self.reader.execute([b"CLIENT", b"CACHING", b"no"])
        self.reader.execute([b"GET", b"a"])
        self.reader.execute([b"GET", b"b"])
        for key in (b"a", b"b"):
            self.writer.execute([b"SET", key, b"1"])
        self.assertEqual(self.pushed, [[b"invalidate", [b"b"]]])

    def test_own_write_is_told_after_the_reply(self) -> None:
        """A client's own write of a key it read is told after that command, not during it."""
        self.reader.execute([b"CLIENT", b"TRACKING", b"on"])
        self.reader.execute([b"GET", b"a"])
        self.reader.execute([b"SET", b"a", b"1"])
        self.assertEqual(self.pushed, [])
        self.assertEqual(self.reader.after_reply, [[b"invalidate", [b"a"]]])

    def test_noloop_skips_own_writes(self) -> None:
        """NOLOOP: a client is not told of its own changes."""
        self.reader.execute([b"CLIENT", b"TRACKING", b"on", b"NOLOOP"])
        self.reader.execute([b"GET", b"a"])
        self.reader.execute([b"SET", b"a", b"1"])
        self.assertEqual((self.pushed, self.reader.after_reply), ([], []))

    def test_flush_sends_nil(self) -> None:
        """FLUSHALL tells every tracking client that everything changed (nil keys)."""
        self.reader.execute([b"CLIENT", b"TRACKING", b"on"])
        self.writer.execute([b"FLUSHALL"])
        self.assertEqual(self.pushed, [[b"invalidate", None]])

    def test_broken_redirect(self) -> None:
        """A RESP3 client whose redirect target left gets tracking-redir-broken."""
        target = self.store.new_session("target")
        self.reader.execute([b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % target.id])
        self.reader.execute([b"GET", b"a"])
        self.store.drop_session(target)
        self.writer.execute([b"SET", b"a", b"1"])
        self.assertEqual(self.pushed, [[b"tracking-redir-broken", target.id]])
        info = self.reader.execute([b"CLIENT", b"TRACKINGINFO"])
        self.assertEqual(info.items[0], (b"flags", [b"on", b"broken_redirect"]))

    def test_reads_before_tracking_off_are_forgotten(self) -> None:
        """Keys read before the last client turned tracking off are not invalidated later."""
        self.reader.execute([b"CLIENT", b"TRACKING", b"on"])
        self.reader.execute([b"GET", b"a"])
        self.reader.execute([b"CLIENT", b"TRACKING", b"off"])
        self.writer.execute([b"FLUSHALL"])
        self.reader.execute([b"CLIENT", b"TRACKING", b"on"])
        self.writer.execute([b"SET", b"a", b"1"])
        self.assertEqual(self.pushed, [])

    def test_redirect_target_that_quit_is_broken(self) -> None:
        """A redirect target that has sent QUIT counts as gone before its connection closes."""
        target = self.store.new_session("target")
        self.reader.execute([b"CLIENT", b"TRACKING", b"on", b"REDIRECT", b"%d" % target.id])
        self.reader.execute([b"GET", b"a"])
        target.execute([b"QUIT"])
        self.writer.execute([b"SET", b"a", b"1"])
        self.assertEqual(self.pushed, [[b"tracking-redir-broken", target.id]])

    def test_trackinginfo_and_getredir(self) -> None:
        """TRACKINGINFO shows flags, redirect and prefixes; GETREDIR the redirect (-1: off)."""
        self.assertEqual(self.reader.execute([b"CLIENT", b"GETREDIR"]), -1)
        self.assertEqual(self.reader.execute([b"CLIENT", b"TRACKINGINFO"]).items,
                         [(b"flags", [b"off"]), (b"redirect", -1), (b"prefixes", [])])
        self.reader.execute([b"CLIENT", b"TRACKING", b"on", b"BCAST", b"PREFIX", b"foo",
                             b"PREFIX", b"bar", b"NOLOOP"])
        self.assertEqual(self.reader.execute([b"CLIENT", b"TRACKINGINFO"]).items,
                         [(b"flags", [b"on", b"bcast", b"noloop"]), (b"redirect", 0),
                          (b"prefixes", [b"bar", b"foo"])])
        self.assertEqual(self.reader.execute([b"CLIENT", b"GETREDIR"]), 0)

    def test_table_limit_evicts_with_invalidations(self) -> None:
        """Over tracking-table-max-keys, remembered keys are dropped and their readers told."""
        self.reader.execute([b"CLIENT", b"TRACKING", b"on"])
        self.reader.execute([b"MGET", b"a", b"b", b"c"])
        tracking.tracker_for(self.store).max_keys = 1
        tracking.tracker_for(self.store).limit_table()
        self.assertEqual(self.pushed, [[b"invalidate", [b"a"]], [b"invalidate", [b"b"]]])


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
        self.clock.advance(0)
        self.assertEqual(transport.value(),
                         b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
                         b"*1\r\n$1\r\nk\r\n")
        transport.clear()
        writer.dataReceived(b"*1\r\n$8\r\nFLUSHALL\r\n")
        self.assertEqual(transport.value(),
                         b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n")

    def test_own_invalidation_follows_the_reply(self) -> None:
        """In RESP3, the invalidation a client's own write causes comes after that write's reply."""
        def resp(*commands) -> bytes:
            return b"".join(b"*%d\r\n" % len(argv) + b"".join(
                b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in argv) for argv in commands)

        client, transport = self.connect()
        client.dataReceived(resp([b"HELLO", b"3"], [b"CLIENT", b"TRACKING", b"on"],
                                 [b"GET", b"a"]))
        transport.clear()
        client.dataReceived(resp([b"SET", b"a", b"1"], [b"PING"]))
        self.assertEqual(transport.value(),
                         b"+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n+PONG\r\n")



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
        clock.advance(0)
        self.assertEqual(journal.appended, 1)
        self.assertEqual(pushed, [MESSAGE + [[b"k"]]])

    def test_stopLeavesNoTimer(self) -> None:
        """Turning tracking off cancels the expiry timer."""
        clock = Clock()
        store = Store(clock)
        session = store.new_session()
        session.execute([b"CLIENT", b"TRACKING", b"on", b"BCAST"])
        session.execute([b"SET", b"k", b"v", b"EX", b"10"])
        clock.advance(0)
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
        clock.advance(0)
        watcher.execute([b"MULTI"])
        watcher.execute([b"GET", b"k"])
        self.assertIs(watcher.execute([b"EXEC"]), NIL_ARRAY)
        self.assertEqual(pushed[-1], MESSAGE + [[b"k"]])
        watcher.execute([b"WATCH", b"k"])
        tracker = store.tracker
        tracker.disable(listener)  # CLIENT TRACKING off (refused while subscribed in RESP2)
        writer.execute([b"SET", b"k", b"2"])
        clock.advance(0)
        watcher.execute([b"MULTI"])
        self.assertIs(watcher.execute([b"EXEC"]), NIL_ARRAY)
        self.assertEqual(len(pushed), 1)
        self.assertEqual(store.journal.appended, 2)
