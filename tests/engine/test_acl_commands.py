"""Tests for kvtwist.engine.acl_commands: categories and the keys each call touches, with the
permission each key needs, checked through ACL DRYRUN against a real redis-server."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import acl_commands
from kvtwist.engine.acl_commands import ALL, READ, WRITE, category_of, universe
from kvtwist.engine.introspect import command_data
from kvtwist.engine.store import Store
from kvtwist.engine.table import TABLE
from kvtwist.wire.replies import to_resp
from tests.redisref import RawConnection, start_redis_or_skip

# Users whose key patterns tell reads from writes and some keys from others.
USERS = {
    b"reader": [b"on", b"nopass", b"+@all", b"&*", b"%R~*"],
    b"writer": [b"on", b"nopass", b"+@all", b"&*", b"%W~*"],
    b"nokeys": [b"on", b"nopass", b"+@all", b"&*"],
    b"some": [b"on", b"nopass", b"+@all", b"&*", b"~a*", b"%R~r*", b"%W~w*"],
}

CALLS = [
    [b"GET", b"a"], [b"SET", b"a", b"v"], [b"SET", b"a", b"v", b"GET"], [b"SET", b"r", b"v"],
    [b"MGET", b"a", b"r", b"w"], [b"MSET", b"a", b"1", b"w", b"2"], [b"MSET", b"r", b"1"],
    [b"MSETNX", b"a", b"1", b"b", b"2"], [b"DEL", b"a", b"w"], [b"UNLINK", b"r"],
    [b"EXISTS", b"a", b"x"], [b"TOUCH", b"r"], [b"RENAME", b"a", b"w"],
    [b"RENAME", b"r", b"a"], [b"RENAMENX", b"a", b"b"], [b"COPY", b"r", b"w"],
    [b"COPY", b"r", b"a", b"DB", b"1"], [b"GETEX", b"r"], [b"GETDEL", b"a"],
    [b"GETSET", b"w", b"v"], [b"APPEND", b"w", b"x"], [b"INCR", b"w"],
    [b"INCRBYFLOAT", b"a", b"1"], [b"STRLEN", b"r"], [b"GETRANGE", b"r", b"0", b"1"],
    [b"SETRANGE", b"w", b"0", b"x"], [b"SUBSTR", b"r", b"0", b"1"],
    [b"BITFIELD", b"r", b"GET", b"u8", b"0"], [b"BITFIELD", b"r", b"INCRBY", b"u8", b"0", b"1"],
    [b"BITFIELD", b"a", b"OVERFLOW", b"SAT", b"GET", b"u8", b"0"],
    [b"BITFIELD", b"r", b"GET", b"u8"], [b"BITFIELD_RO", b"r", b"GET", b"u8", b"0"],
    [b"BITOP", b"AND", b"w", b"r", b"a"], [b"BITOP", b"AND", b"r", b"w"],
    [b"BITCOUNT", b"r"], [b"BITPOS", b"w", b"1"], [b"SETBIT", b"w", b"1", b"1"],
    [b"GETBIT", b"r", b"1"], [b"LCS", b"r", b"a"], [b"LCS", b"r", b"w"],
    [b"EXPIRE", b"w", b"10"], [b"PERSIST", b"r"], [b"TTL", b"r"], [b"PTTL", b"w"],
    [b"TYPE", b"x"], [b"DUMP", b"r"], [b"RESTORE", b"w", b"0", b"x"], [b"MOVE", b"a", b"1"],
    [b"OBJECT", b"ENCODING", b"r"], [b"OBJECT", b"FREQ", b"w"], [b"MEMORY", b"USAGE", b"r"],
    [b"WATCH", b"a", b"r"], [b"SETEX", b"w", b"10", b"v"], [b"PSETEX", b"r", b"10", b"v"],
    [b"SETNX", b"w", b"v"], [b"DECRBY", b"a", b"2"], [b"EXPIRETIME", b"r"],
    [b"KEYS", b"*"], [b"SCAN", b"0"], [b"PUBLISH", b"c", b"m"], [b"SSUBSCRIBE", b"r"],
    [b"SPUBLISH", b"w", b"m"], [b"DBSIZE"],
]


class DryrunTests(SynchronousTestCase):
    """Each call is allowed or refused (naming the same key) as by redis-server."""

    def test_keys_and_permissions(self):
        """Key positions and read/write needs agree with Redis for kvstore's commands."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        theirs = RawConnection(server.port)
        self.addCleanup(theirs.close)
        ours = Store(Clock()).new_session()
        for name, rules in USERS.items():
            argv = [b"ACL", b"SETUSER", name] + rules
            self.assertEqual(to_resp(ours.execute(list(argv))), theirs.call(argv))
        checked = 0
        for call in CALLS:
            if call[0].lower() not in TABLE:
                continue
            for name in USERS:
                argv = [b"ACL", b"DRYRUN", name] + call
                self.assertEqual(to_resp(ours.execute(list(argv))), theirs.call(argv), argv)
                checked += 1
        self.assertGreater(checked, 200)


class UniverseTests(SynchronousTestCase):
    """The command universe: names, subcommands and categories from Redis 7.0's table."""

    def test_categories_from_table(self):
        """Every present Redis command has exactly Redis's categories."""
        data = command_data()
        for info in universe().ordered:
            entry = data.get(info.name)
            if entry is not None:
                self.assertEqual(info.categories,
                                 frozenset(c.lstrip("@") for c in entry["acl"]), info.name)

    def test_subcommands(self):
        """Containers list their subcommands, which know their parent."""
        config = universe().find(b"CONFIG")
        names = [sub.name for sub in config.subs]
        self.assertIn("config|get", names)
        self.assertIs(universe().find(b"config|GET").parent, config)
        self.assertIsNone(universe().find(b"config|get|x"))
        self.assertIsNone(universe().find(b"\xff"))

    def test_rebuilt_when_table_grows(self):
        """A command registered later joins the universe, described by its table flags."""
        from kvtwist.engine.table import _LOOKUP, register

        self.assertIsNone(universe().find(b"kvtestonly"))

        def cleanup():
            for name in (b"kvtestonly", b"KVTESTONLY"):
                TABLE.pop(name, None)
                _LOOKUP.pop(name, None)
            acl_commands._UNIVERSE[:] = []
        self.addCleanup(cleanup)
        register("kvtestonly", -2, "write fast", 1, 1, 1)(lambda session, argv: 0)
        info = universe().find(b"kvtestonly")
        self.assertEqual(info.categories, frozenset(["write", "fast"]))
        self.assertEqual(info.keys([b"kvtestonly", b"s"]), [(1, 3)])

    def test_redis_commands_kvstore_lacks(self):
        """Redis 7.0 commands kvstore does not implement (XACK, EVAL) are in the universe
        with Redis's categories and keys, so rules written for Redis apply."""
        self.assertNotIn(b"xack", TABLE)
        info = universe().find(b"xack")
        self.assertEqual(info.categories, frozenset(["write", "stream", "fast"]))
        self.assertEqual(info.keys([b"xack", b"s", b"g", b"1-1"]), [(1, WRITE)])
        self.assertIn("scripting", universe().find(b"eval").categories)
        self.assertIsNotNone(universe().find(b"function|list"))

    def test_category_names(self):
        """Category names are case-insensitive; unknown ones are None."""
        self.assertEqual(category_of(b"READ"), "read")
        self.assertIsNone(category_of(b"all"))
        self.assertEqual(len(acl_commands.CATEGORIES), 21)


class ExtractorTests(SynchronousTestCase):
    """The getkeys procedures of commands whose specs cannot say."""

    def test_sort(self):
        """SORT reads its key and writes the last STORE destination."""
        sort = acl_commands._PROCS["sort"]
        self.assertEqual(sort([b"SORT", b"k", b"BY", b"store", b"STORE", b"d"]),
                         [(1, READ), (5, WRITE)])
        self.assertEqual(sort([b"SORT", b"k", b"LIMIT", b"0", b"1"]), [(1, READ)])

    def test_migrate(self):
        """MIGRATE touches its key, or the keys after KEYS when the key is empty."""
        migrate = acl_commands._PROCS["migrate"]
        self.assertEqual(migrate([b"MIGRATE", b"h", b"1", b"k", b"0", b"5"]), [(3, ALL)])
        self.assertEqual(migrate([b"MIGRATE", b"h", b"1", b"", b"0", b"5", b"AUTH", b"keys",
                                  b"KEYS", b"a", b"b"]), [(9, ALL), (10, ALL)])
        self.assertEqual(migrate([b"MIGRATE", b"h", b"1", b"k", b"0", b"5", b"KEYS", b"a"]),
                         [])

    def test_keynum(self):
        """numkeys specs (EVAL-like) read the count; a bad count gives no keys."""
        compiled = [({"begin_search": {"type": "index", "spec": {"index": 2}},
                      "find_keys": {"type": "keynum",
                                    "spec": {"keynumidx": 0, "firstkey": 1, "keystep": 1}},
                      "flags": ["RW", "access", "update"]}, ALL)]
        self.assertEqual(acl_commands._spec_keys(compiled, [b"EVAL", b"s", b"2", b"a", b"b"]),
                         [(3, ALL), (4, ALL)])
        self.assertEqual(acl_commands._spec_keys(compiled, [b"EVAL", b"s", b"x"]), [])
        self.assertEqual(acl_commands._spec_keys(compiled, [b"EVAL", b"s", b"3", b"a"]), [])
