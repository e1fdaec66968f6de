"""Which pending writes a reply may reveal: the number the protocol holds each reply until.

The rule (the durability gate; docs/design.md): a reply leaves once every write it could
reveal is durable. The journal numbers its effects in order (``journal.appended``) and a
number is durable once ``journal.acked`` reached it, so a reply waits for one number:

- A read-only command whose reply depends only on its keys (the command table's
  ``readonly`` commands with key positions, ``first_key``/``last_key``/``step``, and no
  ``movablekeys``: GET, MGET, EXISTS, TTL, HGET, LRANGE, ...) waits for the last write
  not durable yet to any of its keys, or to its database as a whole (FLUSHDB, FLUSHALL,
  SWAPDB), in the database it ran in (storage/pending.py keeps those numbers).
- A command that reveals nothing any write changes (PING, ECHO, TIME, SELECT, QUIT,
  COMMAND, MULTI, DISCARD, WATCH, UNWATCH, HELLO, AUTH, CLIENT SETINFO/SETNAME/GETNAME/ID:
  their replies are fixed or about the connection and its user, which the journal does
  not hold) waits for nothing.
- Anything else waits for every write appended before its reply was made: writes (their
  own effects are the last appended), keyless reads (DBSIZE, KEYS, SCAN, RANDOMKEY,
  INFO), commands reading more than their key positions (SORT_RO, movable keys),
  MULTI/EXEC, unknown commands, and a read-only command given no key (DUMP alone dumps
  the whole database).

A client's replies still leave in the order of its requests (the protocol's queue): a
GET behind its own client's pending SET waits for it whatever key it reads. Pushes
(pub/sub messages, keyspace notifications, MONITOR lines) and blocked commands' replies
wait for every write appended before them (the protocol and serve/blocking.py).
Client-side caching invalidations do not: they show no value, and a cache in front must
drop its copy before the writer's OK can send anyone to read through it.
"""

from __future__ import annotations

from kvtwist.engine.table import TABLE

# Keyless commands whose replies show nothing that any write changes.
REVEALS_NOTHING = frozenset((b"ping", b"echo", b"time", b"select", b"quit", b"command",
                             b"multi", b"discard", b"watch", b"unwatch", b"hello", b"auth"))
# Subcommands that show nothing of the data (a client library's connection handshake).
REVEALS_NOTHING_SUB = {b"client": frozenset((b"setinfo", b"setname", b"getname", b"id"))}

NOTHING = "nothing"  # the reply waits for no write
EVERY = "every"  # the reply waits for every write appended before it

_specs: dict = {}  # command name as sent (lower or upper case) -> NOTHING, EVERY or keys


def spec_of(command) -> object:
    """Return NOTHING, EVERY, ``(first, last, step)`` or (a container command) the
    frozenset of its subcommands that reveal nothing, for a command-table entry."""
    if command.name in REVEALS_NOTHING:
        return NOTHING
    if command.name in REVEALS_NOTHING_SUB:
        return REVEALS_NOTHING_SUB[command.name]  # NOTHING for these subcommands only
    if ("readonly" in command.flags and command.first_key > 0
            and "movablekeys" not in command.flags):
        return (command.first_key, command.last_key, command.step or 1)
    return EVERY


def _spec(name: bytes):
    spec = _specs.get(name)
    if spec is not None:
        return spec
    if not _specs:  # the table is complete once the engine is loaded: a session exists
        for command in TABLE.values():
            spec = spec_of(command)
            _specs[command.name] = _specs[command.name.upper()] = spec
        spec = _specs.get(name)
        if spec is not None:
            return spec
    command = TABLE.get(name.lower())  # another spelling (not kept: any case is valid)
    return EVERY if command is None else spec_of(command)


def reply_gate(session, argv, journal, pending) -> int:
    """Return the journal number the reply to ``argv``, a request that just ran and made
    no write, must wait for (0: none). O(keys read).

    ``pending`` is the journal's PendingWrites (None: a journal keeping no notes, whose
    replies all wait for every write appended).
    """
    spec = _specs.get(argv[0]) or _spec(argv[0])
    if spec.__class__ is frozenset:  # a container: CLIENT SETINFO reveals nothing
        if len(argv) > 1 and argv[1].lower() in spec:
            return 0
        spec = EVERY
    if spec is NOTHING:
        return 0
    if spec is EVERY or pending is None:
        return journal.appended
    first, last, step = spec
    count = len(argv)
    if last < 0:
        last += count
    if last >= count:
        last = count - 1
    if first > last:  # no key given (DUMP alone reads the whole database)
        return journal.appended
    return pending.gate(getattr(session.keyspace, "label", 0), argv, first, last + 1, step)
