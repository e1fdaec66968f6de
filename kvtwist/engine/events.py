"""Keyspace notification classes and the events each command's effects are named by.

The table notify.py reads (``EVENTS``): command name -> {effect: (class flag, event name)},
where an effect is an opcode of engine/keyspace.py (SET, DEL, EXPIRE_AT...) or, for an
operation on a typed value, its ``(type code, opcode)``. notify.py fills in the string and
keyspace commands; each type family declares its own with ``declare``.
"""

from __future__ import annotations

# Redis's NOTIFY_* flags (server.h).
KEYSPACE, KEYEVENT, GENERIC, STRING, LIST, SET_CLASS, HASH, ZSET = (
    1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7)
EXPIRED, EVICTED, STREAM, KEY_MISS, MODULE, NEW = (
    1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 13, 1 << 14)
ALL = GENERIC | STRING | LIST | SET_CLASS | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

EVENTS: dict = {}


def declare(command: bytes, *triples) -> None:
    """Name the events of ``command``: ``(effect, class flag, event name)`` triples."""
    EVENTS.setdefault(command, {}).update(
        {effect: (flag, name) for effect, flag, name in triples})


# The commands whose lookups of a key are reads (Redis's lookupKeyRead): a missing key then
# sends a "keymiss" event. Their keyspace.get (get_string, get_typed, mutate) is the lookup.
READS: set = set()


def declare_reads(*commands: bytes) -> None:
    """Say that these commands read their keys (keymiss events)."""
    READS.update(commands)
