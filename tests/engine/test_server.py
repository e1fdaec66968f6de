"""Tests for kvtwist.engine.server: PING, HELLO, COMMAND, CLIENT, COMPACT and friends."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import server as admin
from kvtwist.storage.journal import JournalError
from kvtwist.engine.table import TABLE
from kvtwist.engine.store import NullJournal
from kvtwist.wire.replies import OK, PONG, Error, Status, to_resp
from tests.helpers import SessionMixin

START = 1700000000.25


class AdminMixin(SessionMixin):
    start = START
    peer = "127.0.0.1:4000"


class ConnectionCommandTests(AdminMixin, SynchronousTestCase):
    def test_ping_echo(self):
        """PING answers PONG or its argument; ECHO echoes; too many arguments is an error."""
        self.assertIs(self.call("ping"), PONG)
        self.assertEqual(self.call("ping", "hi"), b"hi")
        self.assertEqual(self.error("ping", "a", "b"),
                         "ERR wrong number of arguments for 'ping' command")
        self.assertEqual(self.call("echo", "x"), b"x")

    def test_quit(self):
        """QUIT and EXIT reply OK and mark the session closing."""
        self.assertEqual(self.call("quit"), OK)
        self.assertTrue(self.session.closing)
        other = self.store.new_session()
        self.assertEqual(other.execute([b"EXIT"]), OK)
        self.assertTrue(other.closing)

    def test_time(self):
        """TIME reports the injected clock's seconds and microseconds."""
        self.assertEqual(self.call("time"), [b"1700000000", b"250000"])

    def test_help(self):
        """HELP lists every command, one bytes line each."""
        lines = self.call("help")
        self.assertEqual(len(lines), len(TABLE))
        self.assertTrue(all(isinstance(line, bytes) for line in lines))
        self.assertIn(b"GET key", lines)


class HelloTests(AdminMixin, SynchronousTestCase):
    def test_resp2(self):
        """HELLO and HELLO 2 answer the server map as a flat RESP2 array; SETNAME names us."""
        reply = self.call("hello", "2", "AUTH", "default", "pw", "SETNAME", "tool")
        fields = dict(reply.items)
        self.assertEqual(fields[b"proto"], 2)
        self.assertEqual(fields[b"id"], self.session.id)
        self.assertEqual(fields[b"version"], b"7.0.0")
        self.assertEqual(self.call("client", "getname"), b"tool")
        self.assertEqual(self.call("hello").items[0], (b"server", b"redis"))
        self.assertEqual(self.session.protocol, 2)

    def test_resp3(self):
        """HELLO 3 switches the session to RESP3 and reports proto 3."""
        reply = self.call("hello", "3")
        self.assertEqual(dict(reply.items)[b"proto"], 3)
        self.assertEqual(self.session.protocol, 3)

    def test_errors(self):
        """RESP3 and bad HELLO arguments get Redis's errors."""
        self.assertEqual(self.error("hello", "4"), "NOPROTO unsupported protocol version")
        self.assertEqual(self.error("hello", "x"),
                         "ERR Protocol version is not an integer or out of range")
        self.assertEqual(self.error("hello", "2", "foo"), "ERR Syntax error in HELLO option 'foo'")


class FakeJournal(NullJournal):
    """A journal whose compact() hands back Deferreds the test fires, or a given failure."""

    def __init__(self, refuse=None):
        NullJournal.__init__(self)
        self.running = []
        self.refuse = refuse

    def compact(self):
        if self.refuse is not None:
            return fail(JournalError(self.refuse))
        d = Deferred()
        self.running.append(d)
        return d

    @property
    def compacting(self):
        return any(not d.called for d in self.running)

    def info(self):
        status = NullJournal.info(self)
        status["compacting"] = self.compacting
        return status


class CompactTests(AdminMixin, SynchronousTestCase):
    def test_started(self):
        """COMPACT starts journal.compact() and replies at once with Redis's status line."""
        journal = FakeJournal()
        self.store.set_journal(journal)
        reply = self.call("compact")
        self.assertEqual(reply, Status(b"Background append only file rewriting started"))
        self.assertEqual(to_resp(reply), b"+Background append only file rewriting started\r\n")
        self.assertEqual(len(journal.running), 1)
        journal.running[0].callback(123)
        self.assertEqual(self.call("BGREWRITEAOF"), reply)
        self.assertEqual(len(journal.running), 2)

    def test_already_running(self):
        """A second COMPACT while one runs gets Redis's already-in-progress error."""
        journal = FakeJournal()
        self.store.set_journal(journal)
        self.call("bgrewriteaof")
        self.assertEqual(self.error("compact"),
                         "ERR Background append only file rewriting already in progress")
        self.assertEqual(len(journal.running), 1)

    def test_no_journal(self):
        """An in-memory store (NullJournal) answers COMPACT with a clear error."""
        self.assertEqual(self.error("compact"), "ERR no journal: this store does not persist")
        self.assertEqual(self.error("compact", "x"),
                         "ERR wrong number of arguments for 'compact' command")

    def test_background_failure_logged(self):
        """A compaction failing later is logged through twisted.logger, not lost."""
        journal = FakeJournal()
        self.store.set_journal(journal)
        events = []
        self.patch(admin.log, "observer", events.append)
        self.call("compact")
        journal.running[0].errback(JournalError("disk full"))
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["log_level"].name, "error")
        self.assertIn("disk full", events[0]["error"])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_refused_at_once(self):
        """A compaction the journal refuses immediately is reported as an error, and logged."""
        self.store.set_journal(FakeJournal(refuse="journal is stopping"))
        events = []
        self.patch(admin.log, "observer", events.append)
        self.assertEqual(self.error("compact"),
                         "ERR Can't execute an AOF background rewriting: journal is stopping")
        self.assertEqual(len(events), 1)

    def test_not_refused_on_journal_failure(self):
        """COMPACT is maintenance: a failed journal does not refuse it as it refuses writes."""
        journal = FakeJournal()
        self.store.set_journal(journal)
        journal.failure = "disk full"
        self.assertIsInstance(self.call("set", "k", "v"), Error)
        self.assertEqual(self.call("compact"),
                         Status(b"Background append only file rewriting started"))
        self.assertNotIn("write", TABLE[b"compact"].flags)
        self.assertIn("admin", TABLE[b"compact"].flags)

