"""The blocking engine (engine/blocking.py) through the list commands: order, wake-up, timeouts."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.blocking import Blocked, parse_timeout
from kvtwist.wire.replies import NIL_ARRAY, CommandError, Error, to_resp
from tests.helpers import SessionMixin


class BlockingTests(SessionMixin, SynchronousTestCase):
    """Clients blocked on keys, woken by writes, on a Clock."""

    def setUp(self):
        SessionMixin.setUp(self)
        self.other = self.store.new_session("127.0.0.1:5001")
        self.third = self.store.new_session("127.0.0.1:5002")

    def run_on(self, session, *args):
        return session.execute([a if isinstance(a, bytes) else a.encode() for a in args])

    def replies(self, blocked):
        got = []
        blocked.add_callback(lambda b: got.append(b.reply))
        return got

    def test_serves_at_once_when_a_list_has_elements(self):
        """BLPOP on a non-empty list pops like LPOP, from the first non-empty key."""
        self.call("RPUSH", "b", "x", "y")
        self.assertEqual(self.call("BLPOP", "a", "b", "0"), [b"b", b"x"])
        self.assertEqual(self.call("BRPOP", "a", "b", "0"), [b"b", b"y"])
        self.assertIsNone(self.session.blocked)

    def test_push_wakes_the_blocked_client(self):
        """A push to the key serves the blocked client after the pushing command."""
        blocked = self.call("BLPOP", "k", "0")
        self.assertIsInstance(blocked, Blocked)
        got = self.replies(blocked)
        self.assertEqual(self.run_on(self.other, "RPUSH", "k", "a", "b"), 2)
        self.assertEqual(got, [[b"k", b"a"]])
        self.assertEqual(self.call("LRANGE", "k", "0", "-1"), [b"b"])
        self.assertIsNone(self.session.blocked)
        self.assertGreater(blocked.seq, 0)  # the pop was journalled

    def test_arrival_order(self):
        """Clients blocked on one key are served in the order they blocked."""
        first = self.replies(self.call("BRPOP", "k", "0"))
        second = self.replies(self.run_on(self.other, "BLPOP", "k", "0"))
        self.run_on(self.third, "RPUSH", "k", "a")
        self.assertEqual((first, second), ([[b"k", b"a"]], []))
        self.run_on(self.third, "RPUSH", "k", "b", "c")
        self.assertEqual(second, [[b"k", b"b"]])
        self.assertEqual(self.run_on(self.third, "LRANGE", "k", "0", "-1"), [b"c"])

    def test_multi_exec_wakes_after_exec(self):
        """A push inside MULTI serves the blocked client after EXEC; a push then pop gives
        nothing to serve."""
        got = self.replies(self.call("BLPOP", "k", "0"))
        self.run_on(self.other, "MULTI")
        self.run_on(self.other, "RPUSH", "k", "a")
        self.run_on(self.other, "LPOP", "k")
        self.run_on(self.other, "RPUSH", "k", "b")
        self.assertEqual(got, [])
        self.assertEqual(self.run_on(self.other, "EXEC"), [1, b"a", 1])
        self.assertEqual(got, [[b"k", b"b"]])

    def test_blocking_inside_multi_answers_at_once(self):
        """Inside MULTI BLPOP answers nil at once and BLMOVE a null bulk."""
        self.call("MULTI")
        self.call("BLPOP", "k", "0")
        self.call("BLMOVE", "k", "d", "LEFT", "LEFT", "0")
        self.call("BLMPOP", "0", "1", "k", "LEFT")
        self.assertEqual(self.call("EXEC"), [NIL_ARRAY, None, NIL_ARRAY])

    def test_timeout(self):
        """A timeout answers nil after that many seconds on the clock, fractions included."""
        got = self.replies(self.call("BLPOP", "k", "0.25"))
        self.clock.advance(0.2)
        self.assertEqual(got, [])
        self.clock.advance(0.06)
        self.assertEqual(got, [NIL_ARRAY])
        self.assertEqual(self.store.blocking.count(), 0)
        self.run_on(self.other, "RPUSH", "k", "a")
        self.assertEqual(self.run_on(self.other, "LLEN", "k"), 1)

    def test_zero_blocks_forever(self):
        """Timeout 0 never expires."""
        got = self.replies(self.call("BLPOP", "k", "0"))
        self.clock.advance(10 ** 6)
        self.assertEqual(got, [])

    def test_client_unblock(self):
        """CLIENT UNBLOCK answers the timeout reply, or with ERROR the UNBLOCKED error."""
        got = self.replies(self.call("BLPOP", "k", "0"))
        third = self.replies(self.run_on(self.third, "BLMOVE", "k", "d", "LEFT", "LEFT", "0"))
        self.assertEqual(self.run_on(self.other, "CLIENT", "UNBLOCK", "%d" % self.session.id), 1)
        self.assertEqual(got, [NIL_ARRAY])
        self.assertEqual(self.run_on(self.other, "CLIENT", "UNBLOCK", "%d" % self.session.id), 0)
        self.assertEqual(self.run_on(self.other, "CLIENT", "UNBLOCK", "%d" % self.third.id,
                                     "ERROR"), 1)
        self.assertEqual(to_resp(third[0]),
                         b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")

    def test_disconnect_loses_nothing(self):
        """A client gone while blocked is dropped from the queue; the next one gets the element."""
        self.call("BLPOP", "k", "0")
        other = self.replies(self.run_on(self.other, "BLPOP", "k", "0"))
        self.store.drop_session(self.session)
        self.run_on(self.third, "RPUSH", "k", "a")
        self.assertEqual(other, [[b"k", b"a"]])
        self.assertEqual(self.store.blocking.waiting, {})

    def test_blmove_chains(self):
        """BLMOVE's push onto a key another client waits on serves that client in the same pass."""
        moved = self.replies(self.call("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"))
        popped = self.replies(self.run_on(self.other, "BRPOP", "dst", "0"))
        self.run_on(self.third, "RPUSH", "src", "a")
        self.assertEqual((moved, popped), ([b"a"], [[b"dst", b"a"]]))
        self.assertEqual(self.run_on(self.third, "EXISTS", "src", "dst"), 0)

    def test_blmove_wrong_destination(self):
        """A woken BLMOVE whose destination holds another type gets WRONGTYPE, pops nothing."""
        got = self.replies(self.call("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"))
        self.run_on(self.other, "SET", "dst", "x")
        self.run_on(self.other, "RPUSH", "src", "a")
        self.assertIsInstance(got[0], Error)
        self.assertTrue(got[0].message.startswith("WRONGTYPE"))
        self.assertEqual(self.run_on(self.other, "LLEN", "src"), 1)

    def test_blmpop_count(self):
        """A woken BLMPOP pops up to its count from the ready key."""
        got = self.replies(self.call("BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2"))
        self.run_on(self.other, "RPUSH", "b", "1", "2", "3")
        self.assertEqual(got, [[b"b", [b"3", b"2"]]])

    def test_key_set_to_another_type_keeps_waiting(self):
        """A key that becomes a string does not serve a list waiter (Redis 7.0)."""
        got = self.replies(self.call("BLPOP", "k", "0"))
        self.run_on(self.other, "SET", "k", "v")
        self.assertEqual(got, [])
        self.run_on(self.other, "DEL", "k")
        self.run_on(self.other, "LPUSH", "k", "z")
        self.assertEqual(got, [[b"k", b"z"]])

    def test_rename_and_databases(self):
        """A list renamed onto the key wakes the client; a push in another database does not."""
        got = self.replies(self.call("BLPOP", "k", "0"))
        self.run_on(self.other, "SELECT", "1")
        self.run_on(self.other, "RPUSH", "k", "other-db")
        self.assertEqual(got, [])
        self.run_on(self.other, "SELECT", "0")
        self.run_on(self.other, "RPUSH", "tmp", "a")
        self.run_on(self.other, "RENAME", "tmp", "k")
        self.assertEqual(got, [[b"k", b"a"]])

    def test_client_list_and_info(self):
        """CLIENT LIST shows flags=b and INFO blocked_clients counts blocked clients."""
        self.call("BLPOP", "k", "0")
        listing = self.run_on(self.other, "CLIENT", "LIST")
        line = [each for each in listing.split(b"\n") if b"id=%d " % self.session.id in each][0]
        self.assertIn(b" flags=b ", line)
        self.assertIn(b"blocked_clients:1", self.run_on(self.other, "INFO", "clients"))

    def test_rollback_of_the_pop(self):
        """Undoing a served pop puts the element back at the head."""
        self.store.keyspace.track_undo()
        self.call("RPUSH", "k", "x")
        self.store.keyspace.settle(1)
        self.call("BLPOP", "k", "0")
        self.store.keyspace.rollback()
        self.assertEqual(self.call("LRANGE", "k", "0", "-1"), [b"x"])


class TimeoutParsingTests(SynchronousTestCase):
    """parse_timeout reads seconds as Redis's getTimeoutFromObjectOrReply."""

    def test_values(self):
        """Fractions round up to the millisecond; hexadecimal floats are read; -0.0001 is 0."""
        self.assertEqual(parse_timeout(b"0"), 0.0)
        self.assertEqual(parse_timeout(b"1.5"), 1.5)
        self.assertEqual(parse_timeout(b"0.0001"), 0.001)
        self.assertEqual(parse_timeout(b"-0.0001"), 0.0)
        self.assertEqual(parse_timeout(b"0x10"), 16.0)

    def test_errors(self):
        """Non-numbers and nan are not floats; negatives, inf and huge values are negative."""
        for raw in (b"x", b"", b" 1", b"nan", b"1_0"):
            self.assertRaises(CommandError, parse_timeout, raw)
            try:
                parse_timeout(raw)
            except CommandError as e:
                self.assertEqual(e.message, "ERR timeout is not a float or out of range")
        for raw in (b"-1", b"inf", b"-inf", b"1e18"):
            try:
                parse_timeout(raw)
            except CommandError as e:
                self.assertEqual(e.message, "ERR timeout is negative")
            else:
                self.fail(raw)
