"""The clients of ``kvproxy --cluster``: each command routed by its keys' slot.

A client that knows nothing of clusters sees one server. GET is answered from the cache
or fetched from the primary of its key's slot; MGET, MSET, DEL, UNLINK, EXISTS and TOUCH
are split per slot (``proxy.multikey``: one command per slot, sent to its primary, the
replies merged in the client's order); any other command whose keys lie in several slots
is refused with Redis's ``CROSSSLOT`` error; a command with keys in one slot goes to its
primary. Keyless commands: ECHO is answered by kvproxy; DBSIZE is summed over the
primaries, KEYS concatenated, RANDOMKEY asks them all; SCAN walks the primaries in
address order (cursor = node cursor x primaries + node index); server-wide commands
(with --allow-admin) and SCRIPT / FUNCTION go to every primary; other keyless commands
(TIME, CONFIG GET, CLUSTER INFO, PUBLISH, ...) to the first primary. SELECT goes to every
primary, which refuses any database but 0 as Redis Cluster does.

MULTI ... EXEC is sent as one block (``send_block``) to the primary of the transaction's
keys, which must lie in one slot (else EXEC answers CROSSSLOT); a block whose commands
were answered MOVED or ASK (EXEC then says EXECABORT) is sent again to the node they name
(after ASKING for ASK).
"""

from __future__ import annotations

from kvtwist.proxy import multikey
from kvtwist.proxy.databases import invalidate
from kvtwist.proxy.slotmap import redirection
from kvtwist.proxy.router import ShardedSession
from kvtwist.proxy.store import ProxySession
from kvtwist.proxy.transactions import transaction_scope
from kvtwist.wire.replies import Error


def _scan(session, argv):
    """SCAN over the primaries in address order; a node's 0 moves on to the next. O(1)
    per call beyond the node's own SCAN."""
    if len(argv) < 2:
        return Error("ERR wrong number of arguments for 'scan' command")
    nodes = session.proxy.live()
    if not nodes:
        return session.proxy.no_server()
    count = len(nodes)
    try:
        cursor = int(argv[1])
        if cursor < 0:
            raise ValueError
    except ValueError:
        return Error("ERR invalid cursor")
    where, inner = cursor % count, cursor // count
    d = nodes[where].forward([argv[0], b"%d" % (inner,)] + argv[2:], db=session.db)
    return d.addCallback(_scanned, count, where)


def _scanned(reply, count, where):
    if reply.__class__ is not list or len(reply) != 2:
        return reply
    inner = int(reply[0])
    if inner == 0:
        if where + 1 >= count:
            return [b"0", reply[1]]
        return [b"%d" % (where + 1,), reply[1]]
    return [b"%d" % (inner * count + where,), reply[1]]


KEYLESS = dict(multikey.KEYLESS)
KEYLESS[b"SCAN"] = _scan


class ClusterSession(ShardedSession):
    """A client of kvproxy --cluster (see the module's docstring): routed as a sharded
    pool's client is, by its keys' slot's primary."""

    keyless = KEYLESS

    @staticmethod
    def cached_get(node, key: bytes, db: int):
        """GET ``key`` through ``node``'s cache view."""
        return node.reads.get(key, db)

    def __init__(self, proxy, session_id: int, peer: str) -> None:
        ProxySession.__init__(self, proxy, session_id, peer)


def send_block(cluster, node, commands: list, db: int, asking: bool = False,
               hops: int = 5):
    """Send MULTI, ``commands`` and EXEC back to back on ``node``'s link (after ASKING
    with ``asking``), dropping what they write from the cache as a write does; the
    Deferred delivers EXEC's reply. When EXEC answers EXECABORT because a command was
    answered MOVED or ASK, the block is sent again to that node (at most ``hops`` times).
    O(total arguments)."""
    targets = transaction_scope(commands, db)
    node.reads.before_write(targets)
    invalidate(node.cache, targets)
    node.forwarded += 1
    request = node.backend.inner.request  # the block's redirections are handled here
    if asking:
        request([b"ASKING"], db=db).addBoth(_discard)
    request([b"MULTI"], db=db).addBoth(_discard)
    queued = []
    for argv in commands:
        request(argv, db=db).addBoth(queued.append)
    d = request([b"EXEC"], db=db)
    d.addCallback(_executed, queued, cluster, commands, db, hops)
    d.addBoth(node._written, targets)
    return d


def _executed(reply, queued, cluster, commands, db, hops):
    if reply.__class__ is not Error or not reply.message.startswith("EXECABORT") or hops <= 0:
        return reply
    for answer in queued:
        if answer.__class__ is Error:
            found = redirection(answer.message)
            if found is None:
                continue
            kind, slot, address = found
            if kind == "MOVED":
                target = cluster.moved_to(slot, address)
                return send_block(cluster, target, commands, db, False, hops - 1)
            cluster.asked += 1
            return send_block(cluster, cluster.node(address), commands, db, True, hops - 1)
    return reply


def _discard(result) -> None:
    return None
