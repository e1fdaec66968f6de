"""Database commands: SELECT, MOVE, SWAPDB, COPY, FLUSHDB, FLUSHALL, and WATCH per database."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.databases import IN_DB, SWAPDB
from kvtwist.engine.keyspace import DEL, FLUSH, SET
from kvtwist.wire.replies import NIL_ARRAY, OK, PONG
from tests.helpers import SessionMixin


class SelectTests(SessionMixin, SynchronousTestCase):
    """SELECT chooses one of 16 databases, each its own keyspace."""

    def test_sixteen_databases_by_default(self):
        """Databases 0 to 15 exist; 16 and negative indexes are out of range, as in Redis."""
        self.assertEqual(self.call("select", "15"), OK)
        self.assertEqual(self.error("select", "16"), "ERR DB index is out of range")
        self.assertEqual(self.error("select", "-1"), "ERR DB index is out of range")
        self.assertEqual(self.error("select", "x"), "ERR value is not an integer or out of range")

    def test_databases_are_separate(self):
        """A key set in database 3 is not seen from database 0, and DBSIZE counts per database."""
        self.call("select", "3")
        self.call("set", "k", "three")
        self.assertEqual(self.call("dbsize"), 1)
        self.call("select", "0")
        self.assertIsNone(self.call("get", "k"))
        self.assertEqual(self.call("dbsize"), 0)
        self.call("select", "3")
        self.assertEqual(self.call("get", "k"), b"three")

    def test_effects_outside_database_zero_carry_the_label(self):
        """The journal gets database 0's effects bare and the others' wrapped in IN_DB."""
        self.call("set", "a", "0")
        self.call("select", "2")
        self.call("set", "b", "2")
        self.assertEqual(self.journal.effects,
                         [(SET, b"a", b"0", 0), (IN_DB, 2, (SET, b"b", b"2", 0))])

    def test_reset_selects_database_zero(self):
        """RESET returns the connection to database 0."""
        self.call("select", "4")
        self.call("reset")
        self.assertEqual(self.session.db, 0)


class MoveCopyTests(SessionMixin, SynchronousTestCase):
    """MOVE and COPY between databases, with Redis's replies."""

    def test_move(self):
        """MOVE moves a key with its expiry; 0 when missing or when the target has it."""
        self.call("set", "k", "v", "px", "5000")
        self.assertEqual(self.call("move", "k", "1"), 1)
        self.assertIsNone(self.call("get", "k"))
        self.call("select", "1")
        self.assertEqual(self.call("get", "k"), b"v")
        self.assertEqual(self.call("pttl", "k"), 5000)
        self.assertEqual(self.call("move", "nokey", "0"), 0)
        self.call("select", "0")
        self.call("set", "k", "other")
        self.call("select", "1")
        self.assertEqual(self.call("move", "k", "0"), 0)

    def test_move_writes_the_target_first(self):
        """The target's SET is logged before the source's DEL, so a torn tail keeps the key."""
        self.call("set", "k", "v")
        self.journal.effects[:] = []
        self.call("move", "k", "1")
        self.assertEqual(self.journal.effects, [(IN_DB, 1, (SET, b"k", b"v", 0)), (DEL, b"k")])

    def test_move_errors(self):
        """MOVE to the same database or out of range fails with Redis's errors."""
        self.call("set", "k", "v")
        self.assertEqual(self.error("move", "k", "0"),
                         "ERR source and destination objects are the same")
        self.assertEqual(self.error("move", "k", "16"), "ERR DB index is out of range")
        self.assertEqual(self.error("move", "k", "x"),
                         "ERR value is not an integer or out of range")

    def test_copy(self):
        """COPY copies within and across databases; REPLACE overwrites; 0 otherwise."""
        self.call("set", "a", "1", "px", "9000")
        self.assertEqual(self.call("copy", "a", "b"), 1)
        self.assertEqual(self.call("pttl", "b"), 9000)
        self.assertEqual(self.call("copy", "a", "b"), 0)
        self.call("set", "a", "2")
        self.assertEqual(self.call("copy", "a", "b", "replace"), 1)
        self.assertEqual(self.call("get", "b"), b"2")
        self.assertEqual(self.call("copy", "a", "a", "db", "5"), 1)
        self.call("select", "5")
        self.assertEqual(self.call("get", "a"), b"2")
        self.assertEqual(self.call("copy", "missing", "x"), 0)

    def test_copy_errors(self):
        """COPY refuses the same key in the same database, bad indexes and unknown options."""
        self.call("set", "a", "1")
        self.assertEqual(self.error("copy", "a", "a"),
                         "ERR source and destination objects are the same")
        self.assertEqual(self.error("copy", "a", "b", "db", "16"), "ERR DB index is out of range")
        self.assertEqual(self.error("copy", "a", "b", "db", "x"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.error("copy", "a", "b", "bogus"), "ERR syntax error")
        # Options are checked in order, the DB index as soon as it is read (as Redis).
        self.assertEqual(self.error("copy", "a", "b", "db", "16", "bogus"),
                         "ERR DB index is out of range")
        self.assertEqual(self.error("copy", "a", "b", "bogus", "db", "16"), "ERR syntax error")


class SwapFlushTests(SessionMixin, SynchronousTestCase):
    """SWAPDB, FLUSHDB and FLUSHALL."""

    def test_swapdb_swaps_what_every_client_sees(self):
        """After SWAPDB 0 1, a client in database 1 sees what database 0 held, and back."""
        other = self.store.new_session()
        other.execute([b"SELECT", b"1"])
        self.call("set", "k", "zero")
        self.assertEqual(self.call("swapdb", "0", "1"), OK)
        self.assertIsNone(self.call("get", "k"))
        self.assertEqual(other.execute([b"GET", b"k"]), b"zero")
        self.assertEqual(self.journal.effects[-1], (SWAPDB, 0, 1, 0, 1))

    def test_swapdb_errors(self):
        """SWAPDB names which index is not an integer, and refuses indexes out of range."""
        self.assertEqual(self.error("swapdb", "x", "1"), "ERR invalid first DB index")
        self.assertEqual(self.error("swapdb", "0", "y"), "ERR invalid second DB index")
        self.assertEqual(self.error("swapdb", "0", "16"), "ERR DB index is out of range")

    def test_swapdb_labels_follow_the_data(self):
        """After SWAPDB, writes to database 0 are logged under the label of the data they change."""
        self.call("swapdb", "0", "3")
        self.call("set", "k", "v")
        self.assertEqual(self.journal.effects[-1], (IN_DB, 3, (SET, b"k", b"v", 0)))

    def test_flushdb_and_flushall(self):
        """FLUSHDB empties the selected database only; FLUSHALL (and FLUSH) empty them all."""
        self.call("set", "a", "1")
        self.call("select", "1")
        self.call("set", "b", "1")
        self.assertEqual(self.call("flushdb"), OK)
        self.assertEqual(self.call("dbsize"), 0)
        self.call("select", "0")
        self.assertEqual(self.call("dbsize"), 1)
        self.call("select", "2")
        self.call("set", "c", "1")
        self.assertEqual(self.call("flushall", "sync"), OK)
        self.assertEqual(len(self.store.databases), 0)
        self.assertEqual(self.journal.effects[-2:], [(FLUSH,), (IN_DB, 2, (FLUSH,))])
        self.assertEqual(self.error("flushall", "now"), "ERR syntax error")


class WatchPerDatabaseTests(SessionMixin, SynchronousTestCase):
    """WATCH watches a key in the database it was WATCHed in, as Redis does."""

    def exec_after_ping(self):
        self.call("multi")
        self.call("ping")
        return self.call("exec")

    def test_write_in_another_database_does_not_dirty(self):
        """A write to the same key name in another database leaves the transaction to run."""
        self.call("watch", "k")
        other = self.store.new_session()
        other.execute([b"SELECT", b"1"])
        other.execute([b"SET", b"k", b"v"])
        self.assertEqual(self.exec_after_ping(), [PONG])

    def test_write_in_the_same_database_dirties(self):
        """A write to the watched key in its database aborts the EXEC (nil reply)."""
        self.call("select", "2")
        self.call("watch", "k")
        other = self.store.new_session()
        other.execute([b"SELECT", b"2"])
        other.execute([b"SET", b"k", b"v"])
        self.assertIs(self.exec_after_ping(), NIL_ARRAY)

    def test_swapdb_dirties_watches_of_keys_that_exist(self):
        """SWAPDB dirties a watch on a key that exists in either of the swapped databases."""
        other = self.store.new_session()
        other.execute([b"SELECT", b"1"])
        other.execute([b"SET", b"k", b"v"])
        self.call("watch", "k")
        self.call("swapdb", "0", "1")
        self.assertIs(self.exec_after_ping(), NIL_ARRAY)
