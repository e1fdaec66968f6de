"""XINFO STREAM [FULL [COUNT count]] and XINFO HELP, as Redis 7.0's t_stream.c.

XINFO GROUPS and XINFO CONSUMERS (consumer groups) are not implemented: they answer
Redis's unknown-subcommand error. "radix-tree-nodes" is the node count of Redis's radix
tree (rax.c) holding the nodes' 16-byte master IDs, worked out from those keys.
"""

from __future__ import annotations

from kvtwist.engine import events
from kvtwist.engine.streamtype import MAX_ID, StreamValue, format_id
from kvtwist.engine.table import c_lower, parse_int, register, sub_dispatch, subcommands
from kvtwist.wire.replies import CommandError, Pairs, Status

_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


def rax_nodes(keys: list) -> int:
    """Return how many nodes Redis's radix tree holding ``keys`` (sorted, distinct, all of
    one length) has: chains of single children are one compressed node, a branching point
    one node, each key's end one node. O(len(keys) x key length)."""
    if not keys:
        return 1
    total = 0
    pending = [(keys, 0)]
    width = len(keys[0])
    while pending:
        group, depth = pending.pop()
        total += 1
        if depth == width:
            continue
        if len(group) == 1:
            pending.append((group, width))  # one compressed node down to the key's end
            continue
        first, last = group[0], group[-1]
        common = depth
        while common < width and first[common] == last[common]:
            common += 1
        if common > depth:
            pending.append((group, common))  # compressed: the shared bytes
            continue
        start = 0
        for index in range(1, len(group) + 1):
            if index == len(group) or group[index][depth] != group[start][depth]:
                pending.append((group[start:index], depth + 1))
                start = index
    return total


def _entry(entries: list):
    if not entries:
        return None
    ident, items = entries[0]
    return [format_id(ident), list(items)]


def _xinfo_stream(session, argv):
    options = argv[3:]
    full, count = bool(options), 10
    if options:
        if len(options) not in (1, 3) or c_lower(options[0]) != b"full":
            raise _syntax(argv)
        if len(options) == 3:
            if c_lower(options[1]) != b"count":
                raise _syntax(argv)
            count = parse_int(options[2])
            if count < 0:
                count = 10
    value = session.keyspace.get_typed(argv[2], StreamValue)
    if value is None:
        raise CommandError("ERR no such key")
    keys = [node.master.to_bytes(16, "big") for node in value.nodes]
    pairs = [(b"length", value.length), (b"radix-tree-keys", len(keys)),
             (b"radix-tree-nodes", rax_nodes(keys)),
             (b"last-generated-id", format_id(value.last_id)),
             (b"max-deleted-entry-id", format_id(value.max_deleted)),
             (b"entries-added", value.entries_added),
             (b"recorded-first-entry-id", format_id(value.first_id))]
    if full:
        entries = value.range(0, MAX_ID, count)
        pairs.append((b"entries", [[format_id(ident), list(items)] for ident, items in entries]))
        pairs.append((b"groups", []))
    else:
        pairs.append((b"groups", 0))
        pairs.append((b"first-entry", _entry(value.range(0, MAX_ID, 1))))
        pairs.append((b"last-entry", _entry(value.range(0, MAX_ID, 1, reverse=True))))
    return Pairs(pairs)


def _syntax(argv) -> CommandError:
    return CommandError("ERR unknown subcommand or wrong number of arguments for '%s'. Try "
                        "XINFO HELP." % argv[1][:128].decode("utf-8", "replace"))


XINFO_SUBCOMMANDS = subcommands("xinfo")
XINFO_SUBCOMMANDS.update({
    b"stream": (-3, _xinfo_stream),
    b"help": (2, lambda session, argv: [Status(line.encode()) for line in _HELP]),
})


@register("xinfo", -2, "readonly", 0, 0, 0)
def cmd_xinfo(session, argv):
    """XINFO STREAM key [FULL [COUNT count]], XINFO HELP: O(nodes) (FULL: plus the count
    of entries)."""
    return sub_dispatch(XINFO_SUBCOMMANDS, argv, session)


events.declare_reads(b"xinfo")
