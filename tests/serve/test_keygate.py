"""Tests for kvtwist.serve.keygate: a reply waits only for the pending writes it may reveal."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import Store
from kvtwist.engine.table import TABLE
from kvtwist.serve import keygate
from kvtwist.serve.factory import KVFactory
from kvtwist.storage.pending import PendingWrites
from tests.procs import start_kvstore


def resp(*args: bytes) -> bytes:
    """Encode one RESP request."""
    out = b"*%d\r\n" % len(args)
    for arg in args:
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


class NotingJournal:
    """A journal whose effects become durable only when a test says so, noting keys as
    storage.journal.Journal does (each effect is sent to the log at once)."""

    failure = None

    def __init__(self) -> None:
        self.appended = 0
        self.acked = 0
        self.pending = PendingWrites()
        self.waiters = []
        self.release_hooks = []
        self.rollback_hooks = []
        self.lost = None  # the failure reason of effects past ``acked`` after fail()

    def append(self, effect) -> None:
        self.appended += 1
        self.pending.note(effect, self.appended)
        self.pending.sent(self.appended)

    def failure_for(self, seq: int):
        return None if seq <= self.acked else (self.lost or "not durable")

    def on_acked(self, seq: int, callback, arg) -> None:
        if seq <= self.acked:
            callback(self.failure_for, arg)
        else:
            self.waiters.append((seq, callback, arg))

    def commit(self, upto: int = 0) -> None:
        """Make the effects up to ``upto`` (default: all) durable and release their waiters."""
        self.acked = upto or self.appended
        self.pending.settle(self.acked)
        self._release(self.acked)

    def fail(self, reason: str) -> None:
        """Refuse every effect not durable yet (the keyspace is not rolled back here)."""
        self.lost = reason
        undone, self.appended = self.appended, self.acked
        self.pending.clear()
        self._release(undone)

    def _release(self, upto: int) -> None:
        for hook in self.release_hooks:
            hook()
        ready = [w for w in self.waiters if w[0] <= upto]
        self.waiters = [w for w in self.waiters if w[0] > upto]
        for _seq, callback, arg in sorted(ready, key=lambda w: w[0]):
            callback(self.failure_for, arg)


class SpecTests(SynchronousTestCase):
    """Which requests wait for which writes (the command table's flags and key positions)."""

    def spec(self, name: bytes):
        return keygate.spec_of(TABLE[name])

    def test_read_only_commands_with_keys_wait_for_their_keys(self) -> None:
        """GET, MGET, EXISTS, TTL, HGET, LRANGE, LCS read their key positions."""
        self.assertEqual(
            [self.spec(n) for n in (b"get", b"mget", b"exists", b"ttl", b"hget", b"lrange",
                                    b"lcs")],
            [(1, 1, 1), (1, -1, 1), (1, -1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 2, 1)])

    def test_everything_else_waits_for_every_write(self) -> None:
        """Keyless reads, movable keys, writes, transactions and admin commands wait for all."""
        for name in (b"dbsize", b"keys", b"scan", b"randomkey", b"info", b"sort_ro",
                     b"zunion", b"sintercard", b"xread", b"object", b"exec",
                     b"set", b"del", b"rename", b"flushdb", b"swapdb", b"publish",
                     b"subscribe", b"config", b"debug"):
            self.assertIs(self.spec(name), keygate.EVERY, name)

    def test_ping_and_echo_reveal_nothing(self) -> None:
        """PING, ECHO and the other keyless commands showing no data wait for nothing."""
        for name in (b"ping", b"echo", b"time", b"select", b"quit", b"command", b"multi",
                     b"discard", b"watch", b"unwatch", b"hello", b"auth"):
            self.assertIs(self.spec(name), keygate.NOTHING, name)

    def test_reply_gate_of_a_request(self) -> None:
        """A request's gate: its keys' last pending write; every write without a key given."""
        store = Store(Clock())
        session = store.new_session()
        journal = NotingJournal()
        journal.append((1, b"a", b"v", 0))
        journal.append((1, b"b", b"v", 0))
        journal.append((1, b"z", b"v", 0))
        gate = keygate.reply_gate
        self.assertEqual(gate(session, [b"GET", b"a"], journal, journal.pending), 1)
        self.assertEqual(gate(session, [b"get", b"c"], journal, journal.pending), 0)
        self.assertEqual(gate(session, [b"mGeT", b"c", b"b", b"a"], journal,
                              journal.pending), 2)
        self.assertEqual(gate(session, [b"PING"], journal, journal.pending), 0)
        # A client library's handshake reveals nothing; CLIENT LIST may show any write.
        self.assertEqual(gate(session, [b"CLIENT", b"SETINFO", b"LIB-NAME", b"x"], journal,
                              journal.pending), 0)
        self.assertEqual(gate(session, [b"client", b"list"], journal, journal.pending), 3)
        self.assertEqual(gate(session, [b"CLIENT"], journal, journal.pending), 3)
        self.assertEqual(gate(session, [b"DBSIZE"], journal, journal.pending), 3)
        # DUMP alone dumps the whole database; GET alone is an arity error: no key.
        self.assertEqual(gate(session, [b"DUMP"], journal, journal.pending), 3)
        self.assertEqual(gate(session, [b"GET"], journal, journal.pending), 3)
        self.assertEqual(gate(session, [b"NOSUCH", b"a"], journal, journal.pending), 3)
        # A journal keeping no notes: every reply waits for every write.
        self.assertEqual(gate(session, [b"GET", b"c"], journal, None), 3)


class GateTests(SynchronousTestCase):
    """A real Store behind KVProtocol, the journal's commits released by the test."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1700000000)
        self.journal = NotingJournal()
        self.store = Store(self.clock, self.journal)
        self.factory = KVFactory(self.store, max_bulk=1 << 20)

    def connect(self, *setup: tuple):
        """Connect a client and run ``setup`` requests (durable at once); return it and its
        transport, cleared."""
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        for argv in setup:
            proto.dataReceived(resp(*argv))
            self.journal.commit()
        transport.clear()
        return proto, transport

    def written(self, *argvs: tuple) -> None:
        """Run ``argvs`` from a fresh client and make them durable."""
        writer, _ = self.connect()
        for argv in argvs:
            writer.dataReceived(resp(*argv))
        self.journal.commit()

    def test_read_of_another_key_does_not_wait(self) -> None:
        """A GET of another key answers while a SET is pending; a GET of that key waits.

        Before, every reply waited for every pending write: a small GET of an unrelated
        key waited seconds for another client's 512 MB SET to be durable.
        """
        self.written((b"SET", b"other", b"o"))
        writer, writer_out = self.connect()
        reader, reader_out = self.connect()
        same, same_out = self.connect()
        writer.dataReceived(resp(b"SET", b"big", b"v" * 1000))
        reader.dataReceived(resp(b"GET", b"other") + resp(b"EXISTS", b"nothing")
                            + resp(b"TTL", b"other"))
        same.dataReceived(resp(b"STRLEN", b"big"))
        self.assertEqual(reader_out.value(), b"$1\r\no\r\n:0\r\n:-1\r\n")
        self.assertEqual((writer_out.value(), same_out.value()), (b"", b""))
        self.journal.commit()
        self.assertEqual((writer_out.value(), same_out.value()), (b"+OK\r\n", b":1000\r\n"))

    def test_multi_key_read_waits_for_any_of_its_keys(self) -> None:
        """MGET waits when one of its keys has a pending write."""
        writer, _ = self.connect()
        reader, reader_out = self.connect()
        writer.dataReceived(resp(b"SET", b"b", b"2"))
        reader.dataReceived(resp(b"MGET", b"a", b"c"))
        self.assertEqual(reader_out.value(), b"*2\r\n$-1\r\n$-1\r\n")
        reader.dataReceived(resp(b"MGET", b"a", b"b", b"c"))
        self.assertEqual(reader_out.value(), b"*2\r\n$-1\r\n$-1\r\n")
        self.journal.commit()
        self.assertEqual(reader_out.value(),
                         b"*2\r\n$-1\r\n$-1\r\n*3\r\n$-1\r\n$1\r\n2\r\n$-1\r\n")

    def test_own_replies_stay_in_request_order(self) -> None:
        """A client's GET of another key behind its own pending SET waits for it."""
        proto, out = self.connect()
        proto.dataReceived(resp(b"SET", b"a", b"1"))
        proto.dataReceived(resp(b"GET", b"b") + resp(b"PING"))
        self.assertEqual(out.value(), b"")
        self.journal.commit()
        self.assertEqual(out.value(), b"+OK\r\n$-1\r\n+PONG\r\n")

    def test_write_waits_for_itself_even_on_an_idle_key(self) -> None:
        """A write's reply waits for its own effects, as before (with one journal in order,
        for every write appended before it too)."""
        first, first_out = self.connect()
        second, second_out = self.connect()
        first.dataReceived(resp(b"SET", b"a", b"1"))
        second.dataReceived(resp(b"SET", b"b", b"1"))
        self.journal.commit(1)
        self.assertEqual((first_out.value(), second_out.value()), (b"+OK\r\n", b""))
        self.journal.commit()
        self.assertEqual(second_out.value(), b"+OK\r\n")

    def test_write_with_no_effect_waits_for_every_write(self) -> None:
        """A write that changed nothing (SETNX on a key set by a pending write) still waits."""
        writer, _ = self.connect()
        other, other_out = self.connect()
        writer.dataReceived(resp(b"SET", b"a", b"1"))
        other.dataReceived(resp(b"SETNX", b"a", b"2"))
        self.assertEqual(other_out.value(), b"")
        self.journal.commit()
        self.assertEqual(other_out.value(), b":0\r\n")

    def test_databases_are_apart(self) -> None:
        """A pending write to k in database 0 does not hold a GET of k in database 1."""
        writer, _ = self.connect()
        reader, reader_out = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"0"))
        reader.dataReceived(resp(b"SELECT", b"1") + resp(b"GET", b"k"))
        self.assertEqual(reader_out.value(), b"+OK\r\n$-1\r\n")
        reader.dataReceived(resp(b"SELECT", b"0") + resp(b"GET", b"k"))
        self.assertEqual(reader_out.value(), b"+OK\r\n$-1\r\n")
        self.journal.commit()
        self.assertEqual(reader_out.value(), b"+OK\r\n$-1\r\n+OK\r\n$1\r\n0\r\n")

    def test_flushdb_holds_its_database(self) -> None:
        """While a FLUSHDB is pending every read of its database waits; other databases not."""
        self.written((b"SET", b"k", b"v"))
        writer, _ = self.connect()
        reader, reader_out = self.connect()
        other, other_out = self.connect((b"SELECT", b"2"))
        writer.dataReceived(resp(b"FLUSHDB"))
        reader.dataReceived(resp(b"GET", b"unrelated"))
        other.dataReceived(resp(b"GET", b"unrelated"))
        self.assertEqual((reader_out.value(), other_out.value()), (b"", b"$-1\r\n"))
        self.journal.commit()
        self.assertEqual(reader_out.value(), b"$-1\r\n")

    def test_flushall_holds_every_database(self) -> None:
        """While a FLUSHALL is pending reads of every database wait."""
        self.connect((b"SELECT", b"5"), (b"SET", b"five", b"5"))
        writer, _ = self.connect()
        reader, reader_out = self.connect((b"SELECT", b"5"))
        writer.dataReceived(resp(b"FLUSHALL"))
        reader.dataReceived(resp(b"GET", b"k"))
        self.assertEqual(reader_out.value(), b"")
        self.journal.commit()
        self.assertEqual(reader_out.value(), b"$-1\r\n")

    def test_swapdb_holds_both_databases(self) -> None:
        """While a SWAPDB is pending reads of either database wait; a third one's do not."""
        self.written((b"SET", b"k", b"zero"))
        writer, _ = self.connect()
        one, one_out = self.connect((b"SELECT", b"1"))
        zero, zero_out = self.connect()
        two, two_out = self.connect((b"SELECT", b"2"))
        writer.dataReceived(resp(b"SWAPDB", b"0", b"1"))
        for proto in (one, zero, two):
            proto.dataReceived(resp(b"GET", b"k"))
        self.assertEqual((one_out.value(), zero_out.value(), two_out.value()),
                         (b"", b"", b"$-1\r\n"))
        self.journal.commit()
        self.assertEqual((one_out.value(), zero_out.value()), (b"$4\r\nzero\r\n", b"$-1\r\n"))

    def test_rename_holds_both_keys(self) -> None:
        """While a RENAME is pending, reads of its source and of its target both wait."""
        self.written((b"SET", b"src", b"v"))
        writer, _ = self.connect()
        source, source_out = self.connect()
        target, target_out = self.connect()
        writer.dataReceived(resp(b"RENAME", b"src", b"dst"))
        source.dataReceived(resp(b"GET", b"src"))
        target.dataReceived(resp(b"GET", b"dst"))
        self.assertEqual((source_out.value(), target_out.value()), (b"", b""))
        self.journal.commit()
        self.assertEqual((source_out.value(), target_out.value()), (b"$-1\r\n", b"$1\r\nv\r\n"))

    def test_move_holds_the_key_in_both_databases(self) -> None:
        """While a MOVE is pending, reads of the key in either database wait."""
        self.written((b"SET", b"k", b"v"))
        writer, _ = self.connect()
        source, source_out = self.connect()
        target, target_out = self.connect((b"SELECT", b"3"))
        writer.dataReceived(resp(b"MOVE", b"k", b"3"))
        source.dataReceived(resp(b"EXISTS", b"k"))
        target.dataReceived(resp(b"EXISTS", b"k"))
        self.assertEqual((source_out.value(), target_out.value()), (b"", b""))
        self.journal.commit()
        self.assertEqual((source_out.value(), target_out.value()), (b":0\r\n", b":1\r\n"))

    def test_deleted_and_expired_keys_wait_for_their_write(self) -> None:
        """A key deleted by a pending DEL, or expired after a pending SET PX, is shown absent
        only once that write is durable."""
        self.written((b"SET", b"gone", b"v"))
        writer, _ = self.connect()
        reader, reader_out = self.connect()
        writer.dataReceived(resp(b"DEL", b"gone") + resp(b"SET", b"brief", b"v", b"PX", b"100"))
        self.clock.advance(1)
        reader.dataReceived(resp(b"GET", b"gone") + resp(b"GET", b"brief"))
        self.assertEqual(reader_out.value(), b"")
        self.journal.commit()
        self.assertEqual(reader_out.value(), b"$-1\r\n$-1\r\n")

    def test_keyless_reads_wait_for_every_write(self) -> None:
        """DBSIZE, KEYS, SCAN, RANDOMKEY and DUMP alone may show any key: they wait for all."""
        writer, _ = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"v"))
        outs = []
        for argv in ((b"DBSIZE",), (b"KEYS", b"*"), (b"SCAN", b"0"), (b"RANDOMKEY",),
                     (b"DUMP",), (b"SORT_RO", b"list", b"BY", b"k")):
            reader, out = self.connect()
            reader.dataReceived(resp(*argv))
            outs.append(out)
        self.assertEqual([out.value() for out in outs], [b""] * len(outs))
        self.journal.commit()
        self.assertEqual(outs[0].value(), b":1\r\n")
        self.assertTrue(all(out.value() for out in outs))

    def test_exec_waits_for_every_write(self) -> None:
        """A transaction's EXEC waits for every pending write, whatever keys it reads (MULTI
        and QUEUED show nothing)."""
        writer, _ = self.connect()
        reader, out = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"v"))
        reader.dataReceived(resp(b"MULTI") + resp(b"GET", b"other"))
        self.assertEqual(out.value(), b"+OK\r\n+QUEUED\r\n")
        reader.dataReceived(resp(b"EXEC"))
        self.assertEqual(out.value(), b"+OK\r\n+QUEUED\r\n")
        self.journal.commit()
        self.assertEqual(out.value(), b"+OK\r\n+QUEUED\r\n*1\r\n$-1\r\n")

    def test_pubsub_message_waits_for_every_write(self) -> None:
        """A message to an idle subscriber waits for the writes made before it was published.

        Before, a message to a client with nothing queued was written at once: a publisher
        could announce a write ("k changed") that a crash then lost.
        """
        subscriber, sub_out = self.connect((b"SUBSCRIBE", b"news"))
        publisher, pub_out = self.connect()
        publisher.dataReceived(resp(b"SET", b"k", b"v") + resp(b"PUBLISH", b"news", b"k set"))
        self.assertEqual((sub_out.value(), pub_out.value()), (b"", b""))
        self.journal.commit()
        self.assertEqual(sub_out.value(),
                         b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nk set\r\n")
        self.assertEqual(pub_out.value(), b"+OK\r\n:1\r\n")

    def test_message_telling_of_a_refused_write_is_dropped(self) -> None:
        """When the disk refuses the writes a message may tell of, the message is dropped
        (it answers no request: an error there would be taken for the next reply)."""
        subscriber, sub_out = self.connect((b"SUBSCRIBE", b"news"))
        publisher, pub_out = self.connect()
        publisher.dataReceived(resp(b"SET", b"k", b"v"))
        publisher.dataReceived(resp(b"PUBLISH", b"news", b"k set"))
        self.journal.fail("disk full")
        self.assertEqual(sub_out.value(), b"")
        self.assertEqual(subscriber._queued_bytes, 0)
        subscriber.dataReceived(resp(b"PING"))
        self.assertEqual(sub_out.value(), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")

    def test_keyspace_notification_waits_for_its_write(self) -> None:
        """A keyspace notification reveals its write: it is sent once that write is durable."""
        self.store.config["notify-keyspace-events"] = "KEA"
        self.connect((b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"))
        subscriber, sub_out = self.connect((b"SUBSCRIBE", b"__keyspace@0__:k"))
        writer, _ = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"v"))
        self.assertEqual(sub_out.value(), b"")
        self.journal.commit()
        self.assertIn(b"__keyspace@0__:k\r\n$3\r\nset\r\n", sub_out.value())

    def test_invalidation_leaves_before_its_write_is_durable(self) -> None:
        """A tracking invalidation leaves at once: it shows no value (a read that follows
        it waits for the key's write), and a cache in front (kvproxy) must drop the old
        value before the writer's OK can send anyone to read through it."""
        self.written((b"SET", b"k", b"v"))
        tracker, tracker_out = self.connect((b"HELLO", b"3"), (b"CLIENT", b"TRACKING", b"ON"),
                                            (b"GET", b"k"))
        writer, writer_out = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"w"))
        self.assertEqual(tracker_out.value(), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")
        self.assertEqual(writer_out.value(), b"")
        tracker.dataReceived(resp(b"GET", b"k"))
        self.assertEqual(tracker_out.value(), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")
        self.journal.commit()
        self.assertEqual(writer_out.value(), b"+OK\r\n")
        self.assertTrue(tracker_out.value().endswith(b"$1\r\nw\r\n"))

    def test_blocked_pop_timeout_waits_for_every_write(self) -> None:
        """A blocked command's reply waits for every write made before it was served, a
        timeout's nil too."""
        waiter, waiter_out = self.connect()
        waiter.dataReceived(resp(b"BLPOP", b"q", b"0.5"))
        writer, _ = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"v"))
        self.clock.advance(1)
        self.assertEqual(waiter_out.value(), b"")
        self.journal.commit()
        self.assertEqual(waiter_out.value(), b"*-1\r\n")

    def test_eviction_is_a_write_the_evicted_key_waits_for(self) -> None:
        """A key evicted by a pending DEL is shown absent only once that DEL is durable."""
        self.connect((b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-random"),
                     (b"CONFIG", b"SET", b"maxmemory", b"1"))
        self.written((b"SET", b"k", b"v" * 100))  # run while under the limit
        evicting, evicting_out = self.connect()
        reader, reader_out = self.connect()
        evicting.dataReceived(resp(b"PING"))  # the eviction runs before the command
        self.assertIsNone(self.store.keyspace.get(b"k"))
        reader.dataReceived(resp(b"EXISTS", b"k"))
        self.assertEqual(reader_out.value(), b"")
        self.journal.commit()
        self.assertEqual(reader_out.value(), b":0\r\n")

    def test_text_and_json_dialects_gate_per_key(self) -> None:
        """The text and JSON dialects apply the same rule."""
        writer, _ = self.connect()
        text, text_out = self.connect()
        json_, json_out = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"v"))
        text.dataReceived(b"GET other\r\nPING\r\n")
        json_.dataReceived(b'{"type": "GET", "key": "other"}\n')
        self.assertEqual((text_out.value(), json_out.value()), (b"(nil)\r\nPONG\r\n", b"null\n"))
        text.dataReceived(b"GET k\r\n")
        json_.dataReceived(b'{"type": "GET", "key": "k", "db": 1}\n')
        self.assertEqual(json_out.value(), b"null\nnull\n")
        json_.dataReceived(b'{"type": "GET", "key": "k"}\n')
        self.assertEqual((text_out.value(), json_out.value()),
                         (b"(nil)\r\nPONG\r\n", b"null\nnull\n"))
        self.journal.commit()
        self.assertEqual((text_out.value(), json_out.value()),
                         (b'(nil)\r\nPONG\r\n"v"\r\n', b'null\nnull\n"v"\n'))

    def test_failed_write_fails_only_the_reads_that_may_show_it(self) -> None:
        """When the disk refuses a write, reads of its key get the error; others are kept."""
        writer, writer_out = self.connect()
        same, same_out = self.connect()
        other, other_out = self.connect()
        writer.dataReceived(resp(b"SET", b"k", b"v"))
        same.dataReceived(resp(b"GET", b"k"))
        other.dataReceived(resp(b"GET", b"other"))
        self.assertEqual(other_out.value(), b"$-1\r\n")
        self.journal.fail("disk full")
        self.assertEqual(writer_out.value(), b"-ERR persistence failed: disk full\r\n")
        self.assertEqual(same_out.value(),
                         b"-ERR persistence failed: disk full; this reply may have seen writes "
                         b"that were rolled back\r\n")


class KVStoreTests(SynchronousTestCase):
    """``twistd kvstore --fsync always`` with its journal writer stopped (SIGSTOP): a write
    is held pending as long as the test wants, the way a 512 MB one is for seconds."""

    def setUp(self) -> None:
        self.data = tempfile.mkdtemp(prefix="kvtwist-keygate-")
        self.addCleanup(shutil.rmtree, self.data, True)
        self.proc = start_kvstore(self.data, "--fsync", "always", "--journal-writer", "process")
        self.addCleanup(self.proc.kill)
        self.socks = []

    def tearDown(self) -> None:
        for sock in self.socks:
            sock.close()

    def client(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.proc.port), timeout=30)
        self.socks.append(sock)
        return sock

    def call(self, sock: socket.socket, *args: bytes, timeout: float = 30) -> bytes:
        """Send a request and return its reply (one read: replies here are small)."""
        sock.settimeout(timeout)
        sock.sendall(resp(*args))
        return sock.recv(1 << 16)

    def writer_pid(self, sock: socket.socket) -> int:
        info = self.call(sock, b"INFO", b"journal").decode()
        return int(info.split("journal_writer_pid:")[1].split()[0])

    def test_pending_large_set_holds_only_reads_of_its_key(self) -> None:
        """While a large SET is not durable, GETs of other keys answer and a GET of its key
        does not; after a kill -9 the SET is lost and no client ever saw it.

        Before, the GET of the other key waited too (every reply waited for every write).
        """
        admin = self.client()
        self.assertEqual(self.call(admin, b"SET", b"other", b"o"), b"+OK\r\n")
        writer_pid = self.writer_pid(admin)
        os.kill(writer_pid, signal.SIGSTOP)
        self.addCleanup(_kill, writer_pid)
        writer = self.client()
        writer.sendall(resp(b"SET", b"big", b"v" * (64 << 20)))
        # The SET has run once a GET of its key no longer answers (a loaded machine may
        # take a second or two to answer one: the wait is long enough not to mistake it).
        for _ in range(1000):
            probe = self.client()
            try:
                self.assertEqual(self.call(probe, b"GET", b"big", timeout=5.0), b"$-1\r\n")
            except socket.timeout:
                break
        else:
            self.fail("the SET never ran")
        reader = self.client()
        for _ in range(20):
            self.assertEqual(self.call(reader, b"GET", b"other", timeout=20), b"$1\r\no\r\n")
            self.assertEqual(self.call(reader, b"PING", timeout=20), b"+PONG\r\n")
        same = self.client()
        same.sendall(resp(b"STRLEN", b"big"))
        same.settimeout(0.5)
        self.assertRaises(socket.timeout, same.recv, 64)
        writer.settimeout(0.1)
        self.assertRaises(socket.timeout, writer.recv, 64)
        # A crash now loses the SET: nobody was told of it.
        self.proc.kill()
        _kill(writer_pid)
        self.proc = start_kvstore(self.data)
        self.addCleanup(self.proc.kill)
        check = self.client()
        self.assertEqual(self.call(check, b"EXISTS", b"big", b"other"), b":1\r\n")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
