"""Tests for kvtwist.proxy.tunnel: a client's own backend connection for pub/sub, MONITOR,
blocking commands, CLIENT, RESET and RESP3, relayed as the backend sends it."""

from __future__ import annotations

import select
import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.tunnel import Frames, opens
from kvtwist.wire.respreply import encode_command
from tests.procs import start_kvproxy
from tests.redisref import start_redis_or_skip


class FramesTests(SynchronousTestCase):
    def split(self, data: bytes, step: int) -> list:
        frames = Frames()
        out = []
        for index in range(0, len(data), step):
            out.extend(frames.feed(data[index:index + step]))
        return out

    def test_resp2(self):
        """RESP2 replies come out whole and as received, however the bytes are split."""
        replies = [b"+OK\r\n", b"-ERR x\r\n", b":12\r\n", b"$3\r\nabc\r\n", b"$-1\r\n",
                   b"*-1\r\n", b"*0\r\n", b"*2\r\n*1\r\n$1\r\na\r\n:1\r\n",
                   b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$0\r\n\r\n"]
        data = b"".join(replies)
        for step in (1, 2, 5, len(data)):
            self.assertEqual(self.split(data, step), replies, step)

    def test_resp3(self):
        """RESP3's maps, sets, pushes, nulls, doubles, booleans, big numbers, verbatim
        strings and attributes (with the reply they annotate) come out whole."""
        replies = [b"%1\r\n$1\r\nk\r\n*1\r\n:1\r\n", b"~2\r\n$1\r\na\r\n$1\r\nb\r\n",
                   b">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n_\r\n", b"_\r\n", b",1.5\r\n",
                   b"#t\r\n", b"(123456789012345678901\r\n", b"=7\r\ntxt:abc\r\n",
                   b"|1\r\n+key\r\n:1\r\n$1\r\nv\r\n", b"%0\r\n", b"!3\r\nerr\r\n"]
        data = b"".join(replies)
        for step in (1, 3, len(data)):
            self.assertEqual(self.split(data, step), replies, step)

    def test_not_resp(self):
        """Bytes that are not RESP are a ValueError."""
        self.assertRaises(ValueError, Frames().feed, b"hello\r\n")


class OpensTests(SynchronousTestCase):
    def test_opens(self):
        """Pub/sub, MONITOR, blocking commands, RESET, HELLO 3 and CLIENT (but SETNAME,
        GETNAME, SETINFO) need a connection of the client's own; the rest do not."""
        for argv in ([b"SUBSCRIBE", b"c"], [b"psubscribe", b"*"], [b"SSUBSCRIBE", b"c"],
                     [b"MONITOR"], [b"BLPOP", b"k", b"0"], [b"BZPOPMIN", b"k", b"0"],
                     [b"WAIT", b"0", b"0"], [b"RESET"], [b"HELLO", b"3"],
                     [b"CLIENT", b"ID"], [b"CLIENT", b"TRACKING", b"on"],
                     [b"CLIENT", b"REPLY", b"OFF"], [b"CLIENT", b"LIST"],
                     [b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]):
            self.assertTrue(opens(argv[0].upper(), argv), argv)
        for argv in ([b"GET", b"k"], [b"HELLO"], [b"HELLO", b"2"],
                     [b"CLIENT", b"SETNAME", b"x"], [b"CLIENT", b"getname"],
                     [b"CLIENT", b"SETINFO", b"LIB-NAME", b"x"],
                     [b"XREAD", b"STREAMS", b"s", b"0"], [b"PUBLISH", b"c", b"m"]):
            self.assertFalse(opens(argv[0].upper(), argv), argv)


class Client:
    """A blocking RESP client reading whole replies (as bytes) with ``Frames``."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.frames = Frames()
        self.ready = []

    def send(self, *commands) -> None:
        self.sock.sendall(b"".join(encode_command(argv) for argv in commands))

    def read(self, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.ready:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise AssertionError("no reply within %g s" % (timeout,))
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.ready.extend(self.frames.feed(data))
        return self.ready.pop(0)

    def call(self, *argv) -> bytes:
        self.send(list(argv))
        return self.read()

    def closed(self, timeout: float = 10.0) -> bool:
        """Whether the server closes the connection (nothing else arriving) in time."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready) and self.sock.recv(65536) == b""

    def close(self) -> None:
        self.sock.close()


class TunnelTests(SynchronousTestCase):
    """kvproxy (--allow-admin off) in front of a real redis-server."""

    def setUp(self):
        self.server = start_redis_or_skip()
        self.addCleanup(self.server.stop)
        self.proxy = start_kvproxy(self.server.port, "--timeout", "5")
        self.addCleanup(self.proxy.stop)
        self.proxy.wait_for_line("invalidation tracking on")

    def client(self, port=None) -> Client:
        client = Client(self.proxy.port if port is None else port)
        self.addCleanup(client.close)
        return client

    def test_subscribe(self):
        """SUBSCRIBE and PSUBSCRIBE through kvproxy answer as redis-server does, messages
        PUBLISHed through kvproxy arrive, and UNSUBSCRIBE ends them."""
        sub, pub = self.client(), self.client()
        sub.send([b"SUBSCRIBE", b"a", b"b"], [b"PSUBSCRIBE", b"c*"])
        self.assertEqual(sub.read(), b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        self.assertEqual(sub.read(), b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
        self.assertEqual(sub.read(), b"*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:3\r\n")
        self.assertEqual(pub.call(b"PUBLISH", b"a", b"hi"), b":1\r\n")
        self.assertEqual(sub.read(), b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n")
        self.assertEqual(pub.call(b"PUBLISH", b"cx", b"yo"), b":1\r\n")
        self.assertEqual(sub.read(), b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\ncx\r\n"
                                     b"$2\r\nyo\r\n")
        self.assertEqual(sub.call(b"PING"), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        sub.send([b"UNSUBSCRIBE"])
        first, second = sub.read(), sub.read()
        self.assertEqual({first[:-4], second[:-4]}, {
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n",
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n"})
        self.assertEqual((first[-4:], second[-4:]), (b":2\r\n", b":1\r\n"))

    def test_slow_subscriber_closed_as_by_redis(self):
        """A subscriber that stops reading is closed, as redis-server closes it past its
        pubsub output limit: kvproxy reads its backend connection only as fast as the
        client takes what is relayed, so the backlog stays in redis-server, whose limit
        applies (before, kvproxy read on, and the subscriber was left open, silent)."""
        sub = self.client()
        sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.assertEqual(sub.call(b"SUBSCRIBE", b"c"),
                         b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
        publisher = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
        self.addCleanup(publisher.close)
        message = b"x" * (1 << 20)
        publish = encode_command([b"PUBLISH", b"c", message])
        for _ in range(100):  # 100 MB: past redis-server's 32 MB pubsub hard limit
            publisher.sendall(publish)
            self.assertIn(publisher.recv(16), (b":1\r\n", b":0\r\n"))  # 0: link closed
        sub.sock.settimeout(10)
        received = 0
        while True:  # what was relayed before the backend closed the link, then the end
            data = sub.sock.recv(1 << 20)
            if not data:
                break
            received += len(data)
        self.assertLess(received, 64 << 20)

    def test_blocking_pop(self):
        """BLPOP waits on the client's own connection while others go on through kvproxy,
        and answers when another client pushes."""
        blocked, other = self.client(), self.client()
        blocked.send([b"BLPOP", b"list", b"0"])
        self.assertEqual(other.call(b"SET", b"k", b"v"), b"+OK\r\n")
        self.assertEqual(other.call(b"GET", b"k"), b"$1\r\nv\r\n")
        self.assertEqual(other.call(b"RPUSH", b"list", b"x"), b":1\r\n")
        self.assertEqual(blocked.read(), b"*2\r\n$4\r\nlist\r\n$1\r\nx\r\n")

    def test_blocked_clients_first(self):
        """Clients blocking one after the other are blocked on the backend before a push
        sent right after them through kvproxy (spare connections open their tunnels at
        once), as they would be on redis-server itself."""
        r = self.client()
        self.client().call(b"CLIENT", b"ID")  # the first tunnel: spares open after it
        for attempt in range(10):
            one, two = self.client(), self.client()
            r.call(b"SET", b"t1", b"nolist")
            one.send([b"BRPOPLPUSH", b"bl", b"t1", b"0"])
            two.send([b"BRPOPLPUSH", b"bl", b"t2", b"0"])
            r.send([b"LPUSH", b"bl", b"foo"])
            self.assertTrue(one.read().startswith(b"-WRONGTYPE"), attempt)
            self.assertEqual(two.read(), b"$3\r\nfoo\r\n", attempt)
            r.read()
            r.call(b"DEL", b"t1", b"t2", b"bl")

    def test_client_commands(self):
        """CLIENT ID is the backend's id of the client's connection: CLIENT LIST shows it
        with the name given before, and CLIENT KILL by it closes the client."""
        client, killer = self.client(), self.client()
        self.assertEqual(client.call(b"CLIENT", b"SETNAME", b"me"), b"+OK\r\n")
        reply = client.call(b"CLIENT", b"ID")
        self.assertTrue(reply.startswith(b":"))
        ident = reply[1:-2]
        listing = client.call(b"CLIENT", b"LIST")
        self.assertIn(b"id=%s " % (ident,), listing)
        self.assertIn(b" name=me ", listing)
        self.assertEqual(client.call(b"CLIENT", b"GETNAME"), b"$2\r\nme\r\n")
        self.assertEqual(killer.call(b"CLIENT", b"KILL", b"ID", ident), b":1\r\n")
        self.assertTrue(client.closed())

    def test_resp3(self):
        """After HELLO 3 the client gets redis-server's RESP3 replies as they are."""
        client = self.client()
        reply = client.call(b"HELLO", b"3")
        self.assertTrue(reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), reply)
        client.call(b"HSET", b"h", b"f", b"v")
        self.assertEqual(client.call(b"HGETALL", b"h"), b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n")
        self.assertEqual(client.call(b"GET", b"missing"), b"_\r\n")

    def test_tracking(self):
        """CLIENT TRACKING on a RESP3 client sends it the backend's invalidation pushes."""
        client, other = self.client(), self.client()
        client.call(b"HELLO", b"3")
        self.assertEqual(client.call(b"CLIENT", b"TRACKING", b"on"), b"+OK\r\n")
        client.call(b"GET", b"tracked")
        self.assertEqual(other.call(b"SET", b"tracked", b"1"), b"+OK\r\n")
        self.assertEqual(client.read(), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n")

    def test_transaction_goes_on(self):
        """A CLIENT command inside MULTI moves the transaction to the client's own
        connection, where it goes on and EXEC runs it all."""
        client = self.client()
        client.send([b"MULTI"], [b"SET", b"t", b"1"], [b"CLIENT", b"SETNAME", b"x"],
                    [b"INCR", b"t"], [b"EXEC"])
        replies = [client.read() for _ in range(5)]
        self.assertEqual(replies, [b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n",
                                   b"*3\r\n+OK\r\n+OK\r\n:2\r\n"])
        self.assertEqual(client.call(b"CLIENT", b"GETNAME"), b"$1\r\nx\r\n")

    def test_local_reply_in_order(self):
        """A server-wide command refused while tunnelled is answered in its place among
        the backend's replies."""
        client, other = self.client(), self.client()
        client.send([b"BLPOP", b"q", b"0"], [b"CONFIG", b"SET", b"maxmemory", b"1"],
                    [b"PING"])
        other.call(b"RPUSH", b"q", b"v")
        self.assertEqual(client.read(), b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n")
        self.assertTrue(client.read().startswith(b"-ERR 'CONFIG SET' changes the backend"))
        self.assertEqual(client.read(), b"+PONG\r\n")

    def test_quit_and_leaving(self):
        """QUIT through a tunnel is answered and closes the client; a client leaving
        closes its connection to the backend."""
        direct = self.client(self.server.port)
        client = self.client()
        client.call(b"CLIENT", b"ID")
        self.assertEqual(client.call(b"QUIT"), b"+OK\r\n")
        self.assertTrue(client.closed())
        before = direct.call(b"CLIENT", b"LIST").count(b"\n")
        gone = self.client()
        gone.call(b"CLIENT", b"ID")
        self.assertEqual(direct.call(b"CLIENT", b"LIST").count(b"\n"), before + 1)
        gone.close()
        deadline = time.monotonic() + 10
        while direct.call(b"CLIENT", b"LIST").count(b"\n") != before:
            self.assertLess(time.monotonic(), deadline, "the tunnel outlived its client")
            select.select([], [], [], 0.05)

    def test_select_and_reset(self):
        """A tunnelled client's SELECT and RESET move it between databases on the backend,
        and its writes there drop what kvproxy cached of that database."""
        reader, client = self.client(), self.client()
        reader.call(b"SELECT", b"3")
        client.call(b"SET", b"k", b"zero")
        client.call(b"CLIENT", b"ID")
        self.assertEqual(client.call(b"SELECT", b"3"), b"+OK\r\n")
        self.assertEqual(client.call(b"SET", b"k", b"three"), b"+OK\r\n")
        self.assertEqual(reader.call(b"GET", b"k"), b"$5\r\nthree\r\n")
        self.assertEqual(client.call(b"SET", b"k", b"3"), b"+OK\r\n")
        self.assertEqual(reader.call(b"GET", b"k"), b"$1\r\n3\r\n")
        self.assertEqual(client.call(b"RESET"), b"+RESET\r\n")
        self.assertEqual(client.call(b"GET", b"k"), b"$4\r\nzero\r\n")

    def test_info(self):
        """INFO is redis-server's, kvproxy's sections after it; INFO proxy is kvproxy's."""
        client = self.client()
        text = client.call(b"INFO")
        self.assertIn(b"redis_version:", text)
        self.assertIn(b"cache_hits:", text)
        keyspace = client.call(b"INFO", b"keyspace")
        self.assertIn(b"# Keyspace", keyspace)
        self.assertNotIn(b"cache_hits:", keyspace)
        self.assertNotIn(b"redis_version:", client.call(b"INFO", b"proxy"))
