"""The soak test's load generator: clients in roles, each checking every reply it gets."""

from __future__ import annotations

import random
from collections import deque
from time import monotonic

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IPullProducer
from zope.interface import implementer

from tests.soak.figures import PATHS, Figures
from tests.soak.model import (
    HEADER, STREAM_MIN, Error, Key, ProtocolError, ReplyReader, Status, Values, brief, encode)

SMALL_KEYS = 8  # every client's small keys
MEDIUM_KEYS = 4  # a slow reader's medium keys, of MEDIUM_SIZE bytes
MEDIUM_SIZE = 256 * 1024
BIG_KEYS = 2  # a big client's keys, of the pool's ``big`` bytes
CHUNK = 256 * 1024  # a big value is written in pieces of this size

# Shares of the clients (after the big ones) per role; "simple" takes the rest.
SHARES = (("slow", 0.05), ("churn", 0.10), ("pipeline", 0.25))
SMALL_ROLES = frozenset(["simple", "pipeline", "churn"])  # whose latencies are measured
# Seconds a client waits after its batch is answered (uniform in the range).
THINK = {"simple": (0.03, 0.12), "pipeline": (0.1, 0.3), "churn": (0.02, 0.1),
         "slow": (0.2, 0.5), "big": (1.0, 3.0)}
PIPELINE_DEPTH = (4, 16)
CHURN_BATCHES = (1, 5)  # batches per connection of a churning client
SLOW_DEPTH = 12  # medium GETs a slow reader pipelines before it stops reading
SLOW_PAUSE = (1.0, 3.0)  # seconds it does not read
RECONNECT = (0.05, 0.2)  # seconds before connecting again
ERROR_BACKOFF = (0.1, 0.2)  # seconds at least between an error reply and the next batch
TICK = 0.01  # seconds between two measures of the load generator's timer lag



def roles(clients: int, big_fraction: float) -> list:
    """The role of each client: ``big`` ones first, then slow, churn, pipeline, simple."""
    big = max(1, int(round(clients * big_fraction))) if big_fraction > 0 else 0
    result = ["big"] * big
    for name, share in SHARES:
        result += [name] * max(1, int(round(clients * share)))
    if len(result) >= clients:
        raise ValueError("%d clients are too few for every role" % (clients,))
    return result + ["simple"] * (clients - len(result))


@implementer(IPullProducer)
class _Body:
    """Writes a big value's body (a block slice) CHUNK by CHUNK, then its CRLF."""

    def __init__(self, transport, block: bytes, start: int, length: int) -> None:
        self.transport = transport
        self.block = block
        self.position = start
        self.end = start + length

    def resumeProducing(self) -> None:
        stop = min(self.position + CHUNK, self.end)
        piece = self.block[self.position:stop]
        self.position = stop
        if stop < self.end:
            self.transport.write(piece)
            return
        self.transport.write(piece + b"\r\n")
        self.transport.unregisterProducer()

    def stopProducing(self) -> None:
        self.position = self.end


class SoakProtocol(protocol.Protocol):
    """One connection of a SoakClient: parses replies and hands them over in order."""

    def __init__(self, client) -> None:
        self.client = client
        self.reader = ReplyReader()

    def connectionMade(self) -> None:
        self.client.connected(self)

    def dataReceived(self, data: bytes) -> None:
        client = self.client
        client.figures.bytes_in += len(data)
        try:
            replies = self.reader.feed(data)
        except ProtocolError as e:
            client.violation("protocol", str(e))
            self.transport.abortConnection()
            return
        if replies:
            now = monotonic()
            for reply in replies:
                if client.conn is not self:
                    break
                client.replied(reply, now)

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.client.lost(self)


class _Factory(protocol.ClientFactory):
    def __init__(self, client) -> None:
        self.client = client

    def buildProtocol(self, addr):
        return SoakProtocol(self.client)

    def clientConnectionFailed(self, connector, reason) -> None:
        self.client.connect_failed()


class SoakClient:
    """A client in one role on one path (``proxy`` or ``direct``), owning its keys.

    It sends a batch, checks every reply against its model as it arrives (a wrong one
    is a violation), thinks, and sends the next; it reconnects when its connection
    drops. Requests in flight are ``(op, subject, context, sent_at)`` in send order.
    """

    def __init__(self, pool, cid: int, role: str, path: str) -> None:
        self.pool = pool
        self.figures = pool.figures
        self.values = pool.values
        self.reactor = pool.reactor
        self.cid = cid
        self.role = role
        self.path = path
        self.rng = random.Random(pool.seed * 1000003 + cid)
        self.small = [Key(cid, index) for index in range(SMALL_KEYS)]
        self.medium = [Key(cid, SMALL_KEYS + index, MEDIUM_SIZE)
                       for index in range(MEDIUM_KEYS if role == "slow" else 0)]
        self.big = [Key(cid, SMALL_KEYS + MEDIUM_KEYS + index, pool.big)
                    for index in range(BIG_KEYS if role == "big" else 0)]
        self.keys = self.small + self.medium + self.big
        self.measured = role in SMALL_ROLES
        self.conn = None
        self.connector = None
        self.pending = deque()
        self.timer = None
        self.closing = False  # we are closing the connection ourselves
        self.finishing = False  # the final probe is sent: close once it is answered
        self.done = False
        self.echoes = 0
        self.batches_left = 0
        self.step = 0
        self.backoff = False
        self.connect_started = 0.0
        self.probed = False  # the final probe was answered

    # -- connections ---------------------------------------------------------------

    def connect(self) -> None:
        self.timer = None
        self.connect_started = monotonic()
        self.connector = self.reactor.connectTCP(
            "127.0.0.1", self.pool.ports[self.path], _Factory(self), timeout=10)

    def connected(self, conn) -> None:
        self.conn = conn
        self.figures.connects += 1
        if self.pool.stopping:
            self.probe()
            return
        self.batches_left = self.rng.randint(*CHURN_BATCHES)
        self.timer = self.reactor.callLater(0, self.next)

    def connect_failed(self) -> None:
        self.figures.incident("refused", self.connect_started, monotonic(), self)
        self.retry()

    def lost(self, conn) -> None:
        if conn is not self.conn:
            return
        self.conn = None
        now = monotonic()
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        if not self.closing:
            started = self.pending[0][3] if self.pending else now
            self.figures.incident("lost", started, now, self, len(self.pending))
        self.closing = False
        self.pending.clear()  # writes in flight stay unsure in their Key
        if self.finishing and self.probed:
            self.finish()
        else:
            self.retry()

    def retry(self) -> None:
        if self.pool.closed:
            self.finish()
            return
        self.timer = self.reactor.callLater(self.rng.uniform(*RECONNECT), self.connect)

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.pool.client_done(self)

    # -- sending -------------------------------------------------------------------

    def send(self, requests: list) -> None:
        """Send ``(op, subject, context, encoded)`` requests as one pipelined write."""
        now = monotonic()
        out = []
        for op, subject, context, encoded in requests:
            self.pending.append((op, subject, context, now))
            out.append(encoded)
        data = b"".join(out)
        self.figures.bytes_out += len(data)
        self.conn.transport.write(data)

    def small_request(self) -> tuple:
        rng = self.rng
        draw = rng.random()
        if draw < 0.35:
            return self.set_request(rng.choice(self.small))
        if draw < 0.70:
            return self.get_request(rng.choice(self.small))
        if draw < 0.90:
            return self.echo_request()
        keys = rng.sample(self.small, rng.randint(2, 3))
        return ("MGET", keys, [key.sent for key in keys],
                encode(b"MGET", *[key.name for key in keys]))

    def set_request(self, key: Key) -> tuple:
        seq = key.write()
        value = self.values.make(self.cid, key.index, seq, key.size_of(seq))
        return ("SET", key, seq, encode(b"SET", key.name, value))

    def get_request(self, key: Key) -> tuple:
        return ("GET", key, key.sent, encode(b"GET", key.name))

    def echo_request(self) -> tuple:
        self.echoes += 1
        token = b"e:%d:%d" % (self.cid, self.echoes)
        return ("ECHO", token, None, encode(b"ECHO", token))

    def send_big(self, key: Key) -> None:
        """SET a big value: header now, body from the block as the socket drains."""
        seq = key.write()
        size = key.size_of(seq)
        start = self.values.offset(self.cid, key.index, seq, size)
        head = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s" % (
            len(key.name), key.name, size, self.values.head(self.cid, key.index, seq))
        self.pending.append(("SET", key, seq, monotonic()))
        self.figures.bytes_out += len(head) + size - HEADER + 2
        transport = self.conn.transport
        transport.write(head)
        transport.registerProducer(
            _Body(transport, self.values.block, start, size - HEADER), False)

    # -- roles ---------------------------------------------------------------------

    def next(self) -> None:
        """Send this role's next batch (the timer fired)."""
        self.timer = None
        if self.pool.stopping:
            self.probe()
            return
        rng = self.rng
        role = self.role
        if role == "simple" or role == "churn":
            self.send([self.small_request()])
        elif role == "pipeline":
            self.send([self.small_request() for _ in range(rng.randint(*PIPELINE_DEPTH))])
        elif role == "slow":
            requests = [self.set_request(rng.choice(self.medium))]
            requests += [self.get_request(rng.choice(self.medium)) for _ in range(SLOW_DEPTH)]
            self.send(requests + [self.echo_request()])
            self.conn.transport.pauseProducing()
            self.timer = self.reactor.callLater(rng.uniform(*SLOW_PAUSE), self.resume)
        else:
            key = self.big[self.step // 3 % len(self.big)]
            if self.step % 3 == 0 and self.pool.big >= STREAM_MIN:
                self.send_big(key)
            elif self.step % 3 == 0:
                self.send([self.set_request(key)])
            else:
                self.send([self.get_request(key)])
            self.step += 1

    def resume(self) -> None:
        self.timer = None
        if self.conn is not None:
            self.conn.transport.resumeProducing()

    def answered(self) -> None:
        """Every request in flight is answered: think, then go on."""
        if self.finishing:
            self.probed = True
            self.closing = True
            self.conn.transport.loseConnection()
            return
        if self.pool.stopping:
            self.probe()
            return
        if self.role == "churn":
            self.batches_left -= 1
            if self.batches_left <= 0:
                self.hang_up()
                return
        delay = self.rng.uniform(*THINK[self.role])
        if self.backoff:
            delay = max(delay, self.rng.uniform(*ERROR_BACKOFF))
            self.backoff = False
        self.timer = self.reactor.callLater(delay, self.next)

    def hang_up(self) -> None:
        """Close politely (QUIT), or abruptly with reads still unanswered."""
        if self.rng.random() < 0.5:
            self.send([("QUIT", None, None, encode(b"QUIT"))])
            return
        self.send([self.get_request(self.rng.choice(self.small)), self.echo_request()])
        self.closing = True
        self.conn.transport.abortConnection()

    def probe(self) -> None:
        """The run is over: read one key and echo a token, then close once answered."""
        self.finishing = True
        self.send([self.get_request(self.rng.choice(self.keys)), self.echo_request()])

    # -- replies -------------------------------------------------------------------

    def replied(self, reply, now: float) -> None:
        """Check ``reply`` against the oldest request in flight."""
        if not self.pending:
            self.violation("unexpected", "a reply with nothing in flight: %s" % (brief(reply),))
            self.conn.transport.abortConnection()
            return
        op, subject, context, sent_at = self.pending.popleft()
        figures = self.figures
        figures.replies[self.path] += 1
        if reply.__class__ is Error:
            figures.error(sent_at, now, self, op, reply.message)
            self.backoff = True
            problem = None
        elif op == "GET":
            problem = self.values.check(self.cid, subject, reply, context)
        elif op == "SET":
            problem = self.check_set(subject, context, reply, sent_at, now)
        elif op == "ECHO":
            problem = None if reply == subject else (
                "foreign", "ECHO %s answered %s" % (subject.decode(), brief(reply)))
        elif op == "MGET":
            problem = self.check_mget(subject, context, reply)
        else:  # QUIT
            problem = None if reply == Status(b"OK") else (
                "foreign", "QUIT answered %s" % (brief(reply),))
            if problem is None:
                self.closing = True
        if problem is not None:
            self.violation(*problem)
        elif reply.__class__ is not Error:
            if self.measured:
                figures.latency(self.path, sent_at, now - sent_at,
                                "%s %s" % (op, self.role))
            elif self.role == "big" and subject in self.big:
                figures.big_ops.append((op, self.path, sent_at, now - sent_at))
        if not self.pending and self.conn is not None and not self.closing:
            self.answered()

    def check_set(self, key: Key, seq: int, reply, sent_at: float, now: float):
        if reply != Status(b"OK"):
            return ("foreign", "SET %s answered %s" % (key.name, brief(reply)))
        key.acknowledge(seq)
        self.figures.acknowledged(self, sent_at, now)
        return None

    def check_mget(self, keys: list, sent: list, reply):
        if reply.__class__ is not list or len(reply) != len(keys):
            return ("foreign", "MGET of %d keys answered %s" % (len(keys), brief(reply)))
        for key, sent_before, value in zip(keys, sent, reply):
            problem = self.values.check(self.cid, key, value, sent_before)
            if problem is not None:
                return problem
        return None

    def violation(self, kind: str, detail: str) -> None:
        self.figures.violation(kind, "client %d (%s, %s): %s"
                               % (self.cid, self.role, self.path, detail))


class Pool:
    """The clients of one soak run; ``finished`` fires once every one has closed.

    ``ports`` maps each path to its loopback port. ``stop()`` makes every client send a
    final probe and close; ``close()`` abandons clients still waiting (each unanswered
    request is a violation).
    """

    def __init__(self, reactor, ports: dict, clients: int, big: int,
                 big_fraction: float, seed: int, values=None) -> None:
        self.reactor = reactor
        self.ports = ports
        self.big = big
        self.seed = seed
        self.values = values if values is not None else Values(max(big, MEDIUM_SIZE))
        self.values.prepare(big)
        self.figures = Figures()
        self.stopping = False
        self.closed = False
        self.finished = defer.Deferred()
        self.clients = [SoakClient(self, cid, role, PATHS[cid % 2])
                        for cid, role in enumerate(roles(clients, big_fraction))]
        self._left = len(self.clients)
        self._ticker = None

    def start(self) -> None:
        for client in self.clients:
            client.connect()
        self._tick(monotonic())

    def _tick(self, due: float) -> None:
        # How late the reactor runs a timer: the load generator's own share of latencies.
        now = monotonic()
        self.figures.lags.append(max(0.0, now - due))
        self.figures.lag_at.append(due)
        if not self.stopping:
            self._ticker = self.reactor.callLater(TICK, self._tick, now + TICK)

    def stop(self) -> None:
        """Every client finishes its batch, then sends its probe and closes."""
        self.stopping = True
        if self._ticker is not None and self._ticker.active():
            self._ticker.cancel()
        for client in self.clients:
            timer = client.timer
            if timer is None or not timer.active():
                continue
            timer.cancel()
            client.timer = None
            if client.conn is None:
                client.connect()  # it was waiting to reconnect: connect now for its probe
            elif client.pending:
                client.resume()  # a slow reader stopped reading: read its replies now
            else:
                client.probe()

    def close(self) -> None:
        """Give up on clients not done yet: their requests in flight were never answered."""
        self.closed = True
        now = monotonic()
        for client in self.clients:
            if client.done:
                continue
            for op, _, _, sent_at in client.pending:
                client.violation("unanswered", "%s sent %.1f s ago" % (op, now - sent_at))
            if not client.pending:
                client.violation("unanswered", "no connection to send the final probe on")
            if client.timer is not None and client.timer.active():
                client.timer.cancel()
            if client.conn is not None:
                client.closing = True
                client.conn.transport.abortConnection()
            elif client.connector is not None and client.connector.state == "connecting":
                client.connector.stopConnecting()
            client.finish()

    def client_done(self, client) -> None:
        self._left -= 1
        if self._left == 0:
            self.finished.callback(self)
