"""Tests for kvtwist.engine.introspect: COMMAND and its subcommands over Redis 7.0's data."""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import introspect
from kvtwist.engine.table import _LOOKUP, TABLE, register
from kvtwist.wire.replies import Pairs, Status, to_resp
from tests.helpers import SessionMixin

GET_INFO = (b"*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
            b"*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n"
            b"*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n"
            b"$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n"
            b"$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n"
            b"$5\r\nlimit\r\n:0\r\n*0\r\n")


class CommandInfoTests(SessionMixin, SynchronousTestCase):
    def test_count_and_all(self):
        """COUNT, COMMAND and COMMAND INFO cover exactly the table's commands."""
        self.assertEqual(self.call("command", "count"), len(TABLE))
        self.assertEqual([entry[0] for entry in self.call("command")], list(TABLE))
        self.assertEqual(len(self.call("command", "info")), len(TABLE))

    def test_info_is_redis_data(self):
        """COMMAND INFO GET is Redis 7.0's entry, byte for byte; unknown names are nil."""
        info = self.call("command", "info", "GET", "nosuch", "a|b|c", "get|x")
        self.assertEqual(to_resp(info[0]), GET_INFO)
        self.assertEqual(info[1:], [None, None, None])

    def test_subcommands(self):
        """A container lists its registered subcommands, each named "container|sub"."""
        info = self.call("command", "info", "client|LIST", "object")
        self.assertEqual(info[0][0], b"client|list")
        self.assertEqual(info[0][1], -2)
        self.assertEqual(info[0][6], [Status(b"@admin"), Status(b"@slow"),
                                      Status(b"@dangerous"), Status(b"@connection")])
        self.assertEqual(sorted(sub[0] for sub in info[1][9]),
                         [b"object|encoding", b"object|freq", b"object|help",
                          b"object|idletime", b"object|refcount"])
        self.assertIsNone(self.call("command", "info", "client|nosuch")[0])

    def test_kvtwist_only_commands(self):
        """A command Redis lacks is described from its table entry, with implicit categories."""
        entry = self.call("command", "info", "compact")[0]
        self.assertEqual(entry[:6], [b"compact", 1, [Status(b"admin"), Status(b"noscript")],
                                     0, 0, 0])
        self.assertEqual(entry[6], [Status(b"@admin"), Status(b"@slow"), Status(b"@dangerous")])
        docs = self.call("command", "docs", "compact")
        self.assertEqual(docs.items[0][0], b"compact")

    def test_later_registrations_show(self):
        """A Redis command registered after import (another family) gets Redis's data."""
        self.assertIsNone(self.call("command", "info", "xack")[0])
        register("xack", -4, "write fast", 1, 1, 1)(lambda session, argv: 0)
        self.addCleanup(TABLE.pop, b"xack")
        self.addCleanup(_LOOKUP.pop, b"xack")
        self.addCleanup(_LOOKUP.pop, b"XACK")
        entry = self.call("command", "info", "xack")[0]
        self.assertEqual(entry[6], [Status(b"@write"), Status(b"@stream"), Status(b"@fast")])
        self.assertIn(b"xack", self.call("command", "list"))


class CommandDocsTests(SessionMixin, SynchronousTestCase):
    def test_docs(self):
        """DOCS gives a map of name to summary, since, group, complexity, arguments."""
        docs = self.call("command", "docs", "get", "nosuch")
        self.assertIsInstance(docs, Pairs)
        [(name, body)] = docs.items
        self.assertEqual(name, b"get")
        self.assertEqual(body.items[:4], [(b"summary", b"Get the value of a key"),
                                          (b"since", b"1.0.0"), (b"group", b"string"),
                                          (b"complexity", b"O(1)")])
        self.assertEqual(body.items[4][1], [Pairs([(b"name", b"key"), (b"type", b"key"),
                                                   (b"key_spec_index", 0)])])

    def test_container_docs(self):
        """A container's docs end with a map of its subcommands' docs."""
        [(name, body)] = self.call("command", "docs", "object").items
        self.assertEqual(body.items[-1][0], b"subcommands")
        self.assertIn(b"object|freq", [sub for sub, _ in body.items[-1][1].items])

    def test_all_docs(self):
        """DOCS without names covers every table command."""
        self.assertEqual(len(self.call("command", "docs").items), len(TABLE))


class CommandListTests(SessionMixin, SynchronousTestCase):
    def test_list(self):
        """LIST names every command and subcommand; FILTERBY narrows by category or pattern."""
        names = self.call("command", "list")
        self.assertIn(b"get", names)
        self.assertIn(b"client|list", names)
        keyspace = self.call("command", "list", "filterby", "aclcat", "KeySpace")
        self.assertIn(b"expire", keyspace)
        self.assertNotIn(b"get", keyspace)
        self.assertEqual(self.call("command", "list", "filterby", "aclcat", "nosuch"), [])
        self.assertEqual(self.call("command", "list", "filterby", "module", "x"), [])
        self.assertEqual(sorted(self.call("command", "list", "filterby", "pattern", "OBJECT|*")),
                         [b"object|encoding", b"object|freq", b"object|help",
                          b"object|idletime", b"object|refcount"])

    def test_list_syntax(self):
        """A malformed LIST filter is a syntax error."""
        for args in (["x"], ["filterby", "aclcat"], ["filterby", "foo", "x"],
                     ["filterby", "aclcat", "read", "x"]):
            self.assertEqual(self.error("command", "list", *args), "ERR syntax error")


class GetKeysTests(SessionMixin, SynchronousTestCase):
    def test_getkeys(self):
        """GETKEYS finds keys by the key specs; errors match Redis's."""
        self.assertEqual(self.call("command", "getkeys", "get", "k"), [b"k"])
        self.assertEqual(self.call("command", "getkeys", "MSET", "a", "1", "b", "2"), [b"a", b"b"])
        self.assertEqual(self.call("command", "getkeys", "object", "encoding", "k"), [b"k"])
        self.assertEqual(self.call("command", "getkeys", "rename", "a", "b"), [b"a", b"b"])
        self.assertEqual(self.error("command", "getkeys", "foo", "a"),
                         "ERR Invalid command specified")
        self.assertEqual(self.error("command", "getkeys", "client", "foo"),
                         "ERR Invalid command specified")
        self.assertEqual(self.error("command", "getkeys", "ping", "x"),
                         "ERR The command has no key arguments")
        self.assertEqual(self.error("command", "getkeys", "get", "a", "b"),
                         "ERR Invalid number of arguments specified for command")
        self.assertEqual(self.error("command", "getkeys", "get"),
                         "ERR wrong number of arguments for 'command|getkeys' command")
        self.assertEqual(self.error("command", "getkeys", "getrange", "k", "0"),
                         "ERR Invalid number of arguments specified for command")

    def test_getkeysandflags(self):
        """GETKEYSANDFLAGS adds each key's flags; SET's depend on GET as in Redis."""
        self.assertEqual(self.call("command", "getkeysandflags", "set", "k", "v"),
                         [[b"k", [Status(b"OW"), Status(b"update")]]])
        self.assertEqual(self.call("command", "getkeysandflags", "set", "k", "v", "GET"),
                         [[b"k", [Status(b"RW"), Status(b"access"), Status(b"update")]]])
        self.assertEqual(self.call("command", "getkeysandflags", "del", "a", "b"),
                         [[b"a", [Status(b"RM"), Status(b"delete")]],
                          [b"b", [Status(b"RM"), Status(b"delete")]]])

    def test_spec_kinds(self):
        """Keyword and keynum specs are followed (ZUNIONSTORE, GEORADIUS, EVAL)."""
        data = introspect.command_data()
        keys = introspect._spec_keys
        argv = [b"zunionstore", b"d", b"2", b"a", b"b", b"weights", b"1", b"2"]
        self.assertEqual([p for p, _ in keys(data["zunionstore"], argv)], [1, 3, 4])
        self.assertIsNone(keys(data["zunionstore"], [b"zunionstore", b"d", b"-1", b"a"]))
        self.assertIsNone(keys(data["zunionstore"], [b"zunionstore", b"d", b"5", b"a"]))
        argv = [b"georadius", b"k", b"0", b"0", b"1", b"m", b"STORE", b"dst"]
        self.assertEqual([p for p, _ in keys(data["georadius"], argv)], [1, 7])
        self.assertIsNone(keys(data["eval"], [b"eval", b"s", b"0"]))  # no keys: the caller
        # answers an empty array for EVAL (no_mandatory_keys), an error for other commands

    def test_help(self):
        """HELP lists the subcommands in Redis's words; unknown ones are refused."""
        lines = self.call("command", "help")
        self.assertEqual(lines[0], Status(
            b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))
        self.assertEqual(lines[-2:], [Status(b"HELP"), Status(b"    Prints this help.")])
        self.assertEqual(self.error("command", "foo"),
                         "ERR unknown subcommand 'foo'. Try COMMAND HELP.")


class GeneratorTests(SynchronousTestCase):
    def test_generator_entry(self):
        """tools/gen_command_docs.py turns EXPIRE's json into the stored entry (docs aside)."""
        sys.path.insert(0, "tools")
        self.addCleanup(sys.path.remove, "tools")
        import gen_command_docs
        entry = gen_command_docs._entry("expire", {
            "group": "generic", "arity": -3, "command_flags": ["WRITE", "FAST"],
            "acl_categories": ["KEYSPACE"], "summary": "s", "since": "1.0.0",
            "key_specs": [{"flags": ["RW", "UPDATE"], "begin_search": {"index": {"pos": 1}},
                           "find_keys": {"range": {"lastkey": 0, "step": 1, "limit": 0}}}]})
        self.assertEqual(entry, introspect.command_data()["expire"] | {
            "docs": entry["docs"]})
        self.assertEqual(subprocess.call([sys.executable, "tools/gen_command_docs.py", "--help"],
                                         stdout=subprocess.DEVNULL), 0)
