"""Streams through the journal: every stream operation replays, survives compaction (node
layout, counters and metadata included), rolls back exactly, is counted by ``kvtwist
check`` and exported in a form redis-server loads."""

from __future__ import annotations

import io
import json
import subprocess

from kvtwist.storage import fsck
from tests.storage.journalharness import TypeJournalCase
from tests.storage.test_journal import StoreHarness

# Every stream operation (opcodes 1-4: XADD, TRIM, XDEL, XSETID), on two databases.
COMMANDS = [("xadd", "s", "%d-1" % n, "f", "v%d" % n, "g", "x" * (n % 50)) for n in range(1, 260)]
COMMANDS += [
    ("xdel", "s", "5-1", "150-1", "999-1"), ("xtrim", "s", "maxlen", "~", "200"),
    ("xtrim", "s", "minid", "20-1"), ("xadd", "s", "maxlen", "=", "240", "300-*", "h", "1"),
    ("xsetid", "s", "400-0", "entriesadded", "999", "maxdeletedid", "350-0"),
    ("xadd", "empty", "maxlen", "0", "1-1", "f", "v"),
    ("select", "5"), ("xadd", "s5", "1-1", "a", "b"), ("xadd", "s5", "2-1", "a", "c"),
    ("xdel", "s5", "1-1"), ("select", "0"),
]


class StreamJournalTests(TypeJournalCase):
    """Stream operations survive restarts, compactions and refused writes."""

    commands = COMMANDS

    def values(self, h) -> dict:
        """Every stream as (entries, metadata, node layout)."""
        found = {}
        for keyspace in h.store.databases:
            for key, value in keyspace.data.items():
                entries = value.range(0, (1 << 128) - 1)
                layout = [(node.master, node.deleted, node.last, node.base, list(node.ids))
                          for node in value.nodes]
                found[(keyspace.index, key)] = (
                    entries, (value.length, value.last_id, value.first_id, value.max_deleted,
                              value.entries_added, value.nbytes), layout)
        return found

    def test_restart(self):
        """Every stream command's effect replays to the same streams (an empty one too)."""
        h = self.ran()
        expected = self.values(h)
        entries, meta, _ = expected[(0, b"empty")]
        self.assertEqual((entries, meta[0]), ([], 0))
        self.assertEqual(meta[1:3], (1 << 64 | 1, 0))
        self.assertEqual(len(expected[(5, b"s5")][0]), 1)
        self.assertEqual(expected[(0, b"s")][1][4], 999)
        self.assertEqual(self.values(h.reload()), expected)

    def test_compaction(self):
        """A compaction taken with stream operations pending replays each exactly once,
        and the snapshot keeps the node layout (so later approximate trims agree)."""
        h, again = self.compacted(("xadd", "s", "0-1", "base", "1"),
                                  ("xadd", "s", "500-1", "after", "1"))
        again.run("xtrim", "s", "maxlen", "~", "100")
        h.run("xtrim", "s", "maxlen", "~", "100")
        self.assertEqual(self.values(again), self.values(h))
        self.assertEqual(self.values(again.reload()), self.values(h))

    def test_rollback(self):
        """XADD (new node or not), XDEL (emptying a node or not), trims and XSETID the disk
        refused leave the stream exactly as before."""
        h = StoreHarness(self)
        for n in range(1, 230):
            h.run("xadd", "s", "%d-1" % n, "f", "v")
        self.refused(h, (("xadd", "s", "300-1", "f", "v"), ("xdel", "s", "1-1", "201-1"),
                         ("xdel", "s", *["%d-1" % n for n in range(201, 230)]),
                         ("xtrim", "s", "maxlen", "~", "10"), ("xtrim", "s", "maxlen", "7"),
                         ("xadd", "s", "maxlen", "0", "400-1", "a", "b"),
                         ("xsetid", "s", "999-9", "entriesadded", "5000"),
                         ("xadd", "new", "1-1", "f", "v")))

    def test_check_and_export(self):
        """kvtwist check counts the streams; the RESP export loads into redis-server with
        the same entries, last ID, entries-added and max-deleted ID; JSON lines typed."""
        h = StoreHarness(self)
        self.run_all(h)
        h.run("pexpireat", "s", "4102444800000")
        expected, sock = self.exported(h)

        def cli(db, *args):
            out = subprocess.run(["redis-cli", "-s", sock, "-n", str(db), "--raw"] + list(args),
                                 capture_output=True).stdout
            return out.split(b"\n")[:-1] if out != b"\n" else []
        for (db, key), (entries, meta, _) in expected.items():
            self.assertEqual(cli(db, "xlen", key), [b"%d" % len(entries)], key)
            flat = cli(db, "xrange", key, "-", "+")
            want = []
            for ident, items in entries:
                want.append(b"%d-%d" % (ident >> 64, ident & ((1 << 64) - 1)))
                want.extend(items)
            self.assertEqual(flat, want, key)
            info = cli(db, "xinfo", "stream", key)
            fields = dict(zip(info[0:14:2], info[1:14:2]))
            mask = (1 << 64) - 1
            self.assertEqual(fields[b"last-generated-id"],
                             b"%d-%d" % (meta[1] >> 64, meta[1] & mask))
            self.assertEqual(fields[b"entries-added"], b"%d" % meta[4])
            self.assertEqual(fields[b"max-deleted-entry-id"],
                             b"%d-%d" % (meta[3] >> 64, meta[3] & mask))
        self.assertEqual(cli(0, "pexpiretime", "s"), [b"4102444800000"])
        out = io.BytesIO()
        fsck.export(h.directory, "json", out)
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual({line["type"] for line in lines}, {"stream"})
        self.assertEqual(len(lines), 3)
