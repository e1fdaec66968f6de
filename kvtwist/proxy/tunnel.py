"""A client's own backend connection (a tunnel), for what a shared connection cannot carry.

Pub/sub (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs), MONITOR, the blocking
commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, WAIT, XREAD
and XREADGROUP with BLOCK), CLIENT (but SETNAME, GETNAME and SETINFO, which kvproxy
answers), RESET and HELLO 3 change the state of the connection they run on, answer more
or less than once, or hold it: a client's first such command opens a connection of its
own to the backend, and from then on, until the client leaves, every command of the
client goes there as it is and every byte the backend sends back (replies, RESP3 pushes,
pub/sub messages, MONITOR lines, invalidations) is relayed to the client as it came
(``Raw`` replies). The client then sees the backend itself: its ids (CLIENT ID, LIST,
KILL, UNBLOCK), its RESP3, its CLIENT TRACKING, CLIENT REPLY and so on. When the backend
closes the connection (QUIT, CLIENT KILL), the client's is closed too.

A RESP3 client (HELLO 3) is tunnelled too, so that it gets the backend's own RESP3 (maps,
sets, doubles, RESP3's reply shapes) rather than RESP2 replies rendered in RESP3 -- and
so no cache. With ``--resp3-cached`` kvproxy answers HELLO 3 itself and renders the
shared connection's replies in RESP3 instead: the cache serves RESP3 clients (redis-py
8's default) too, at the cost of RESP2's shapes (HGETALL an array, not a map).

The new connection logs in, SELECTs the client's database, names itself as the client
named itself (CLIENT SETNAME) and speaks RESP3 if the client does, replies swallowed;
a transaction the client had opened in kvproxy (MULTI and its queued commands) is
replayed on it the same way. When requests are in flight on the shared connection (the
client's among them, maybe), its commands wait for a PING sent there after them, so
that the client's writes sent before run first. A couple of connections are kept open
ahead of need (``Spares``, once a first client was tunnelled), so that a client's first
command reaches the backend as soon as one sent on the shared connection would.
A write sent through the tunnel drops what it changes from the cache when it is sent;
the backend's invalidations (CLIENT TRACKING) drop it again once it ran.

A reply kvproxy gives itself while tunnelled (a refused server-wide command, AUTH of
kvproxy's own password) must not overtake the backend's replies to the commands before
it: a ``PING <marker>`` goes through the tunnel and the local reply takes its reply's
place. Cost: one backend connection per such client, for as long as it is connected.
"""

from __future__ import annotations

import os

from twisted.internet import defer, protocol

from kvtwist.proxy.commands import EVERYWHERE, WRITES, admin, admin_keys, blocks, scope
from kvtwist.proxy.databases import invalidate
from kvtwist.wire.replies import NO_REPLY, Error, Raw, to_resp
from kvtwist.wire.respreply import encode_command

# Commands that open a tunnel (``opens``: some only with certain arguments).
BLOCKING = frozenset(b"BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP WAIT "
                     b"WAITAOF".split())
SUBSCRIBING = frozenset(b"SUBSCRIBE PSUBSCRIBE SSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE "
                        b"SUNSUBSCRIBE".split())
TUNNELLED = BLOCKING | SUBSCRIBING | frozenset(
    b"MONITOR RESET CLIENT HELLO XREAD XREADGROUP".split())
# CLIENT subcommands kvproxy answers itself until the client is tunnelled (redis-py 8's
# RESP3 handshake sends MAINT_NOTIFICATIONS, which Redis 7.0 does not know either).
LOCAL_CLIENT = frozenset([b"SETNAME", b"GETNAME", b"SETINFO", b"MAINT_NOTIFICATIONS"])


def opens(name: bytes, argv: list, resp3: bool = True) -> bool:
    """Whether command ``argv`` (``name`` upper-cased) needs a connection of the client's
    own (HELLO 3 only with ``resp3``: else kvproxy answers it and renders the shared
    connection's replies in RESP3 itself); O(len(argv))."""
    if name not in TUNNELLED:
        return False
    if name == b"CLIENT":
        return len(argv) < 2 or argv[1].upper() not in LOCAL_CLIENT
    if name == b"HELLO":
        return resp3 and len(argv) > 1 and argv[1] == b"3"
    if name in (b"XREAD", b"XREADGROUP"):
        return blocks(argv)
    return True


class Frames:
    """Splits a RESP2/RESP3 byte stream into whole top-level replies, bytes as received.

    ``feed`` is O(bytes fed): a reply arriving in pieces is scanned once (the scan resumes
    where it stopped). A RESP3 attribute (``|``) travels with the reply it annotates.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.start = 0  # where the reply being read begins
        self.pos = 0  # where its next element begins
        self.stack = []  # elements still missing in each open aggregate

    def feed(self, data: bytes) -> list:
        """Add ``data``; return the replies it completed (ValueError: not RESP)."""
        buf = self.buf
        buf += data
        out = []
        stack = self.stack
        end = len(buf)
        while self.pos < end:
            pos = self.pos
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            kind = buf[pos]
            if kind in b"$!=":  # bulk, blob error, verbatim
                size = int(buf[pos + 1:nl])
                stop = nl + 2 if size < 0 else nl + 4 + size
                if stop > end:
                    break
            elif kind in b"+-:_,#(":
                stop = nl + 2
            elif kind in b"*~>%|":
                count = int(buf[pos + 1:nl])
                if kind in b"%|":
                    count *= 2
                if kind == 124:  # | : the attribute's pairs, then the reply itself
                    count += 1
                self.pos = nl + 2
                if count > 0:
                    stack.append(count)
                    continue
                stop = nl + 2
            else:
                raise ValueError("not RESP: %r" % (bytes(buf[pos:pos + 16]),))
            self.pos = stop
            while stack:
                stack[-1] -= 1
                if stack[-1]:
                    break
                stack.pop()
            else:
                out.append(bytes(buf[self.start:stop]))
                self.start = stop
        if self.start:
            del buf[:self.start]
            self.pos -= self.start
            self.start = 0
        return out


class _Link(protocol.Protocol):
    """A connection of the client's own: bytes in, whole replies out to its Tunnel (none
    while it is a spare); the replies to kvproxy's own requests (``swallow``) dropped."""

    def __init__(self, tunnel=None, spares=None) -> None:
        self.tunnel = tunnel
        self.spares = spares  # the Spares it belongs to while it is one
        self.frames = Frames()
        self.swallow = 0

    def connectionMade(self) -> None:
        if self.tunnel is not None:
            self.tunnel._connected(self)

    def send(self, commands: list, swallowed: bool = False) -> None:
        """Write ``commands`` (argvs); with ``swallowed`` their replies are dropped."""
        if swallowed:
            self.swallow += len(commands)
        if commands and self.transport is not None:
            self.transport.write(b"".join(encode_command(argv) for argv in commands))

    def dataReceived(self, data: bytes) -> None:
        try:
            frames = self.frames.feed(data)
        except ValueError:
            self.transport.loseConnection()
            return
        for frame in frames:
            if self.swallow:
                self.swallow -= 1
            elif self.tunnel is not None:
                self.tunnel._frame(frame)

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        if self.tunnel is not None:
            self.tunnel._lost(reason)
        elif self.spares is not None:
            self.spares.lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


class Spares:
    """Connections to a store's backend opened (and logged in) ahead of need, so that a
    client's tunnel opens at once: its first command reaches the backend in the turn it
    arrived in, not a connection later (after which another client's command sent on the
    shared connection meanwhile would be ahead of it). Filled after the first tunnel, to
    ``count``; a spare the backend closes is forgotten."""

    def __init__(self, store, count: int = 2) -> None:
        self.store = store
        self.count = count
        self.ready = []
        self.opening = 0
        self.stopped = False

    def take(self):
        """A connected spare _Link (then one more is opened), or None."""
        link = self.ready.pop() if self.ready else None
        self.fill()
        return link

    def fill(self) -> None:
        backend = self.store.backend
        while not self.stopped and len(self.ready) + self.opening < self.count:
            self.opening += 1
            link = _Link(spares=self)
            d = backend.endpoint.connect(protocol.Factory.forProtocol(lambda link=link: link))
            d.addCallbacks(self._connected, self._failed)

    def _connected(self, link) -> None:
        self.opening -= 1
        if self.stopped:
            link.close()
            return
        login = getattr(self.store.backend, "login", None)
        link.send([login] if login is not None else [], swallowed=True)
        self.ready.append(link)

    def _failed(self, failure) -> None:
        self.opening -= 1  # the next tunnel connects itself, and fills again

    def lost(self, link) -> None:
        if link in self.ready:
            self.ready.remove(link)

    def stop(self) -> None:
        """Close the spares (kvproxy is stopping)."""
        self.stopped = True
        ready, self.ready = self.ready, []
        for link in ready:
            link.spares = None
            link.close()


class Tunnel:
    """One client's own connection to ``store``'s backend; ``session`` gets its replies
    (``session.push(Raw(...))``) and is disconnected when the backend closes it."""

    def __init__(self, session, store) -> None:
        self.session = session
        self.store = store
        self.link = None
        self.ready = False  # connected, and the fence answered
        self.closed = False
        self.waiting = []  # encoded requests, until ready
        self.markers = {}  # frame -> the local reply to give in its place
        self._token = b"kvproxy-" + os.urandom(8).hex().encode("ascii") + b"-"
        self._count = 0

    def open(self, prepare: list, replayed: list) -> None:
        """Take a spare connection (or connect, and log in); send ``prepare`` (SELECT, ...) and
        ``replayed`` (a transaction's MULTI and queued commands), their replies dropped;
        then the client's commands -- once a PING sent now on the shared connection is
        answered when requests are in flight there (the client's may be among them)."""
        store = self.store
        backend = store.backend
        fence = None
        if not backend.idle or store.reads.batched:
            store.reads.before_write(EVERYWHERE)
            fence = backend.request([b"PING"])
        link = store.spares.take()
        if link is not None:
            link.spares = None
            link.tunnel = self
            self.link = link
            link.send(prepare + replayed, swallowed=True)
            if fence is None:
                self._opened(None)
            else:
                fence.addCallbacks(self._opened, self._failed)
            return
        login = getattr(backend, "login", None)
        if login is not None:
            prepare = [login] + prepare
        factory = protocol.Factory.forProtocol(lambda: _Link(self))
        steps = [backend.endpoint.connect(factory).addCallback(self._prepare,
                                                               prepare + replayed)]
        if fence is not None:
            steps.append(fence)
        d = defer.gatherResults(steps, consumeErrors=True)
        d.addCallbacks(self._opened, self._failed)

    def _connected(self, link) -> None:
        self.link = link
        if self.closed:
            link.close()

    def _prepare(self, link, commands) -> None:
        if not self.closed:
            link.send(commands, swallowed=True)

    def _opened(self, result) -> None:
        if self.closed:
            return
        self.ready = True
        self._pace()
        waiting, self.waiting = self.waiting, []
        if waiting and self.link is not None:
            self.link.transport.write(b"".join(waiting))

    def _failed(self, failure) -> None:
        if self.closed:
            return
        failure = getattr(failure.value, "subFailure", failure)
        error = Raw(to_resp(Error("ERR kvproxy cannot open a backend connection for this "
                                  "client: %s" % (failure.getErrorMessage(),))))
        count, self.waiting = len(self.waiting), []
        self.close()
        for _ in range(count):
            self.session.push(error)
        self.session.untunnel(self)

    def send(self, argv: list):
        """Send a client's command; its reply comes as the backend sends it."""
        data = encode_command(argv)
        if self.ready and self.link is not None:
            self.link.transport.write(data)
        elif not self.closed:
            self.waiting.append(data)
        return NO_REPLY

    def write(self, argv: list, targets):
        """Send a client's write, dropping what it may change from the cache first."""
        self.store.reads.before_write(targets)
        invalidate(self.store.cache, targets)
        return self.send(argv)

    def local(self, reply):
        """Give kvproxy's own ``reply`` after the backend's replies to what came before."""
        self._count += 1
        token = self._token + b"%d" % (self._count,)
        self.markers[b"$%d\r\n%s\r\n" % (len(token), token)] = reply
        self.markers[b"*2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(token), token)] = reply
        return self.send([b"PING", token])

    def _frame(self, frame: bytes) -> None:
        if self.markers and frame in self.markers:
            reply = self.markers.pop(frame)
            for other in [key for key, value in self.markers.items() if value is reply]:
                del self.markers[other]
            self.session.push(Raw(to_resp(reply)))
            return
        self.session.push(Raw(frame))

    def _pace(self) -> None:
        # Read the backend at the pace the client takes what is relayed: its output gate
        # pauses the link's transport while the client's transport buffer is full, so a
        # subscriber that does not read leaves the backlog in the backend, whose own
        # output limits then apply (Redis closes a slow subscriber), instead of in kvproxy.
        gate = getattr(self.session, "output_gate", None)
        link = self.link
        if gate is not None and gate.stream is None and link is not None \
                and link.transport is not None:
            gate.attach(link.transport)

    def _unpace(self, link) -> None:
        gate = getattr(self.session, "output_gate", None)
        if gate is not None and link is not None and gate.stream is link.transport:
            gate.detach()

    def _lost(self, reason) -> None:
        self._unpace(self.link)
        self.link = None
        if not self.closed:  # the backend closed it: so does kvproxy with its client
            self.closed = True
            self.session.tunnel_closed(self)

    def close(self) -> None:
        """Close the connection (the client left)."""
        self.closed = True
        if self.link is not None:
            self._unpace(self.link)
            self.link.close()


def tunnel_execute(session, tunnel: Tunnel, name: bytes, argv: list):
    """Run a tunnelled client's command: through its tunnel, as it is, but for a refused
    server-wide command and AUTH of kvproxy's own password (given in order); writes drop
    what they change from the cache. O(len(argv))."""
    proxy = session.proxy
    extractor = WRITES.get(name)
    if extractor is not None:
        return tunnel.write(argv, scope(name, argv, session.db, extractor(argv)))
    if name == b"SELECT" and len(argv) == 2 and argv[1].isdigit():
        session.db = int(argv[1])  # for the scope of its writes; the backend checks it
    elif name == b"RESET":
        session.db = 0
    elif name == b"AUTH" and proxy.auth.required:
        return tunnel.local(session._auth(argv))
    elif name == b"HELLO" and proxy.auth.required:
        reply = session._hello(argv)  # checks its AUTH (kvproxy's password)
        if reply.__class__ is Error:
            return tunnel.local(reply)
        return tunnel.send(_without_auth(argv))
    server_wide = admin(name, argv)
    if server_wide:
        if not proxy.allow_admin:
            return tunnel.local(refusal(server_wide))
        return tunnel.write(argv, scope(name, argv, session.db, admin_keys(name, argv)))
    return tunnel.send(argv)


def refusal(server_wide: str) -> Error:
    """The error for a server-wide command kvproxy does not forward."""
    return Error("ERR '%s' changes the backend for every client of kvproxy: refused "
                 "(start kvproxy with --allow-admin to forward it)" % (server_wide,))


def _without_auth(argv: list) -> list:
    """HELLO's argv without its AUTH user password (kvproxy checked them)."""
    out = list(argv[:2])
    index = 2
    while index < len(argv):
        if argv[index].upper() == b"AUTH" and index + 2 < len(argv):
            index += 3
        else:
            out.append(argv[index])
            index += 1
    return out
