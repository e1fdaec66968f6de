"""Tests for kvtwist.serve.limits: maxclients, protected mode, timeout, keepalive, buffers."""

from __future__ import annotations

import socket

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.limits import client_eviction_limit, limits_of
from kvtwist.engine.store import Store
from kvtwist.serve.factory import KVFactory
from kvtwist.serve.limits import DENIED, MAX_CLIENTS, READ_OUTPUT, set_keepalive, buffered

START = 1700000000.0


def resp(*argv: bytes) -> bytes:
    """Encode one RESP request."""
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


class SlowReader(StringTransport):
    """A StringTransport whose written bytes stay unsent (its dataBuffer) until ``read``."""

    offset = 0
    _tempDataLen = 0

    @property
    def dataBuffer(self) -> bytes:
        return self.value()

    def read(self) -> bytes:
        """Take everything written so far, as a client reading its socket."""
        data = self.value()[self.offset:]
        self.offset = len(self.value())
        return data


class LimitsTests(SynchronousTestCase):
    """A real Store behind KVProtocol over StringTransports, on a task.Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.store = Store(self.clock)
        self.factory = KVFactory(self.store, reactor=self.clock)
        self.factory.outbox = None
        self.factory.startFactory()
        self.addCleanup(self.factory.stopFactory)
        self.admin, self.admin_out = self.connect()

    def connect(self, host: str = "127.0.0.1", port: int = 5000, transport=None):
        proto = self.factory.buildProtocol(None)
        if transport is None:
            transport = StringTransport(hostAddress=IPv4Address("TCP", "10.0.0.1", 6379),
                                        peerAddress=IPv4Address("TCP", host, port))
        proto.makeConnection(transport)
        proto._write = transport.write
        proto._close = transport.loseConnection
        return proto, transport

    def call(self, *argv: bytes) -> bytes:
        """Send one request on the admin connection; return its reply."""
        self.admin_out.clear()
        self.admin.dataReceived(resp(*argv))
        return self.admin_out.value()

    def info_field(self, section: bytes, name: bytes) -> bytes:
        for line in self.call(b"INFO", section).split(b"\r\n"):
            if line.startswith(name + b":"):
                return line.split(b":", 1)[1]
        self.fail("no %r in INFO %r" % (name, section))

    def test_maxclients_refuses_the_next_client(self) -> None:
        """With maxclients 3, the fourth client is sent Redis's error and closed, and counted."""
        self.assertEqual(self.call(b"CONFIG", b"SET", b"maxclients", b"3"), b"+OK\r\n")
        served = [self.connect(port=5001 + n) for n in range(2)]
        proto, transport = self.connect(port=5009)
        self.assertEqual(transport.value(), MAX_CLIENTS)
        self.assertEqual(MAX_CLIENTS, b"-ERR max number of clients reached\r\n")
        self.assertTrue(transport.disconnecting)
        proto.dataReceived(resp(b"PING"))
        self.assertEqual(transport.value(), MAX_CLIENTS)
        self.assertEqual(len(self.store.clients), 3)
        proto.connectionLost(None)
        self.assertEqual(len(self.store.clients), 3)
        self.assertEqual(self.info_field(b"stats", b"rejected_connections"), b"1")
        self.assertEqual(self.info_field(b"clients", b"maxclients"), b"3")
        served[0][0].connectionLost(None)
        _, transport = self.connect(port=5010)
        self.assertEqual(transport.value(), b"")

    def test_protected_mode_refuses_other_hosts(self) -> None:
        """In protected mode a non-loopback client is DENIED while no password is set."""
        self.factory.watchdog.protect = True
        _, transport = self.connect("192.168.7.7")
        self.assertEqual(transport.value(), DENIED)
        self.assertTrue(DENIED.startswith(b"-DENIED Redis is running in protected mode"))
        self.assertTrue(transport.disconnecting)
        _, transport = self.connect("127.0.0.1", 5001)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.info_field(b"stats", b"rejected_connections"), b"1")
        self.call(b"CONFIG", b"SET", b"requirepass", b"secret")
        _, transport = self.connect("192.168.7.7", 5002)
        self.assertEqual(transport.value(), b"")
        self.admin.dataReceived(resp(b"AUTH", b"secret"))
        self.call(b"CONFIG", b"SET", b"requirepass", b"")
        _, transport = self.connect("192.168.7.7", 5003)
        self.assertEqual(transport.value(), DENIED)
        self.call(b"CONFIG", b"SET", b"protected-mode", b"no")
        _, transport = self.connect("192.168.7.7", 5004)
        self.assertEqual(transport.value(), b"")

    def test_unprotected_factory_serves_other_hosts(self) -> None:
        """A factory not marked protected (an embedded server's) serves any address."""
        _, transport = self.connect("192.168.7.7")
        self.assertFalse(transport.disconnecting)

    def test_idle_client_closed_after_timeout(self) -> None:
        """With timeout 5, a client idle 6 s is closed by the cron; an active one stays."""
        self.call(b"CONFIG", b"SET", b"timeout", b"5")
        idle, idle_out = self.connect(port=5001)
        busy, busy_out = self.connect(port=5002)
        idle.dataReceived(resp(b"PING"))
        for _ in range(6):
            self.clock.advance(1)
            busy.dataReceived(resp(b"PING"))
            self.admin.dataReceived(resp(b"PING"))
        self.assertTrue(idle_out.disconnecting)
        self.assertFalse(busy_out.disconnecting)

    def test_timeout_spares_subscribers_and_monitors(self) -> None:
        """Subscribers and MONITOR clients are never closed for being idle."""
        self.call(b"CONFIG", b"SET", b"timeout", b"1")
        subscriber, subscriber_out = self.connect(port=5001)
        subscriber.dataReceived(resp(b"SUBSCRIBE", b"ch"))
        monitor, monitor_out = self.connect(port=5002)
        monitor.dataReceived(resp(b"MONITOR"))
        plain, plain_out = self.connect(port=5003)
        self.clock.advance(3)
        self.assertFalse(subscriber_out.disconnecting)
        self.assertFalse(monitor_out.disconnecting)
        self.assertTrue(plain_out.disconnecting)

    def test_timeout_zero_never_closes(self) -> None:
        """The default timeout 0 closes nobody however long idle."""
        _, transport = self.connect(port=5001)
        self.clock.advance(100000)
        self.assertFalse(transport.disconnecting)

    def test_keepalive_set_on_accepted_sockets(self) -> None:
        """tcp-keepalive turns SO_KEEPALIVE on with TCP_KEEPIDLE set to its value."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)

        class Transport:
            keepalive = None

            def setTcpKeepAlive(self, on):
                self.keepalive = on
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if on else 0)

        transport = Transport()
        transport.socket = sock
        set_keepalive(transport, 120)
        self.assertTrue(transport.keepalive)
        self.assertTrue(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        if hasattr(socket, "TCP_KEEPIDLE"):
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE), 120)
        transport = Transport()
        transport.socket = sock
        set_keepalive(transport, 0)  # 0: left off
        self.assertIsNone(transport.keepalive)

    def test_query_buffer_limit_closes_without_buffering(self) -> None:
        """An unfinished request past client-query-buffer-limit closes the client, counted."""
        self.call(b"CONFIG", b"SET", b"client-query-buffer-limit", b"1mb")
        proto, transport = self.connect(port=5001)
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n")
        for _ in range(20):
            proto.dataReceived(b"x" * 65536)
            if transport.disconnecting:
                break
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        self.assertLess(proto._parser.buffered(), 2 * 1024 * 1024)
        self.assertEqual(limits_of(self.store).query_buffer_disconnections, 1)

    def test_bulk_over_proto_max_bulk_len(self) -> None:
        """A bulk longer than proto-max-bulk-len (CONFIG SET at run time) is Redis's error."""
        self.call(b"CONFIG", b"SET", b"proto-max-bulk-len", b"1mb")
        proto, transport = self.connect(port=5001)
        proto.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
        self.assertEqual(transport.value(), b"-ERR Protocol error: invalid bulk length\r\n")
        self.assertTrue(transport.disconnecting)

    def test_normal_hard_limit_writes_nothing(self) -> None:
        """Over a normal client's hard limit, none of the read's replies is written."""
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"normal 100000 0 0")
        self.call(b"SET", b"big", b"x" * 150000)
        proto, transport = self.connect(port=5001)
        proto.dataReceived(resp(b"GET", b"big"))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(limits_of(self.store).output_buffer_disconnections, 1)
        self.assertNotIn(b"GET big", self.call(b"CLIENT", b"LIST"))

    def test_streamed_reply_over_the_limit(self) -> None:
        """KEYS whose reply passes a normal client's hard limit closes it mid-run."""
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"normal 100000 0 0")
        for n in range(2000):
            self.call(b"SET", b"long-key-name-prefix-%0100d" % n, b"v")
        proto, transport = self.connect(port=5001)
        proto.dataReceived(resp(b"KEYS", b"*"))
        for _ in range(10000):
            if not self.clock.calls:
                break
            self.clock.advance(0)
        self.assertTrue(transport.disconnecting)
        self.assertLess(len(transport.value()), 110000)
        self.assertEqual(limits_of(self.store).output_buffer_disconnections, 1)

    def test_streamed_reply_under_hard_limit_held_then_written(self) -> None:
        """With a hard limit, a streamed reply is written whole once done; one passing the
        limit (HRANDFIELD's huge count) closes the client having sent none of it."""
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"normal 1000000 0 0")
        self.call(b"HSET", b"h", b"a", b"b")
        proto, transport = self.connect(port=5001)
        proto.dataReceived(resp(b"HRANDFIELD", b"h", b"-3000"))
        for _ in range(100):
            self.clock.advance(0)
        self.assertEqual(transport.value(), b"*3000\r\n" + b"$1\r\na\r\n" * 3000)
        proto, transport = self.connect(port=5002)
        proto.dataReceived(resp(b"HRANDFIELD", b"h", b"-999999999"))
        for _ in range(10000):
            if transport.disconnecting:
                break
            self.clock.advance(0)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_clients_memory_counts_for_maxmemory(self) -> None:
        """Partly received requests count in used_memory and for eviction, as Redis's
        query buffers do; maxmemory-clients closes the biggest clients instead, never a
        CLIENT NO-EVICT one, counted in evicted_clients (CONFIG RESETSTAT zeroes it)."""
        self.call(b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru")
        for n in range(10):
            self.call(b"SET", b"k%d" % n, b"x" * 10000)
        used = int(self.info_field(b"memory", b"used_memory"))
        self.call(b"CONFIG", b"SET", b"maxmemory", b"%d" % (used + 200000))
        hog, hog_out = self.connect(port=5001)
        hog.dataReceived(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000\r\n" + b"x" * 150000)
        self.clock.advance(1)
        self.assertGreater(int(self.info_field(b"memory", b"used_memory")), used + 150000)
        self.assertEqual(self.call(b"DBSIZE"), b":10\r\n")  # under: nothing evicted
        hog.dataReceived(b"x" * 100000)
        self.clock.advance(1)
        self.assertLess(int(self.call(b"DBSIZE")[1:-2]), 10)
        self.assertNotEqual(self.info_field(b"stats", b"evicted_keys"), b"0")
        self.call(b"CONFIG", b"RESETSTAT")
        self.assertEqual(self.info_field(b"stats", b"evicted_keys"), b"0")
        self.assertFalse(hog_out.disconnecting)
        self.call(b"CLIENT", b"NO-EVICT", b"on")
        self.call(b"CONFIG", b"SET", b"maxmemory-clients", b"200kb")
        self.clock.advance(1)
        self.assertTrue(hog_out.disconnecting)
        self.assertEqual(self.info_field(b"stats", b"evicted_clients"), b"1")
        self.assertFalse(self.admin_out.disconnecting)

    def test_maxmemory_clients_values(self) -> None:
        """maxmemory-clients takes bytes or a percentage of maxmemory, as Redis."""
        self.assertEqual(self.call(b"CONFIG", b"SET", b"maxmemory-clients", b"10%"), b"+OK\r\n")
        self.assertEqual(self.call(b"CONFIG", b"GET", b"maxmemory-clients"),
                         b"*2\r\n$17\r\nmaxmemory-clients\r\n$3\r\n10%\r\n")
        self.assertIn(b"percentage argument must be less or equal to 100",
                      self.call(b"CONFIG", b"SET", b"maxmemory-clients", b"101%"))
        self.assertIn(b"argument must be a memory or percent value",
                      self.call(b"CONFIG", b"SET", b"maxmemory-clients", b"foo"))
        self.call(b"CONFIG", b"SET", b"maxmemory", b"10mb")
        self.assertEqual(client_eviction_limit(self.store), 1024 * 1024)
        self.call(b"CONFIG", b"SET", b"maxmemory-clients", b"1000")
        self.assertEqual(client_eviction_limit(self.store), 128 * 1024)

    def test_pubsub_hard_limit(self) -> None:
        """A subscriber that does not read is closed once its unsent output passes the limit."""
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 100000 0 0")
        subscriber, out = self.connect(port=5001, transport=SlowReader(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5001)))
        subscriber.dataReceived(resp(b"SUBSCRIBE", b"foo"))
        out.read()
        published = 0
        while not out.disconnecting and published < 1000:
            self.call(b"PUBLISH", b"foo", b"x" * 1000)
            published += 1
        self.assertTrue(out.disconnecting)
        self.assertTrue(90 <= published <= 101, published)
        self.assertEqual(limits_of(self.store).output_buffer_disconnections, 1)

    def test_omem_is_the_unsent_output(self) -> None:
        """CLIENT LIST's omem shows what a client has not read yet."""
        subscriber, out = self.connect(port=5001, transport=SlowReader(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5001)))
        subscriber.dataReceived(resp(b"CLIENT", b"SETNAME", b"sub") + resp(b"SUBSCRIBE", b"c"))
        out.read()
        self.call(b"PUBLISH", b"c", b"x" * 5000)
        line = [each for each in self.call(b"CLIENT", b"LIST").split(b"\n") if b"name=sub" in each]
        self.assertIn(b" omem=%d " % len(out.value()[out.offset:]), line[0])

    def test_soft_limit_needs_its_seconds(self) -> None:
        """Over the soft limit the client is closed only once that lasted the soft seconds."""
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 0 100000 3")
        subscriber, out = self.connect(port=5001, transport=SlowReader(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5001)))
        subscriber.dataReceived(resp(b"SUBSCRIBE", b"foo"))
        for _ in range(110):
            self.call(b"PUBLISH", b"foo", b"x" * 1000)
        self.clock.advance(3)
        self.assertFalse(out.disconnecting)
        self.clock.advance(2)  # no traffic: the cron closes it
        self.assertTrue(out.disconnecting)

    def test_soft_limit_clock_resets_under_it(self) -> None:
        """A client back under its soft limit starts its soft seconds again next time."""
        self.call(b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 0 100000 3")
        subscriber, out = self.connect(port=5001, transport=SlowReader(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5001)))
        subscriber.dataReceived(resp(b"SUBSCRIBE", b"foo"))
        for _ in range(110):
            self.call(b"PUBLISH", b"foo", b"x" * 1000)
        self.clock.advance(2)
        out.read()
        self.clock.advance(1)
        for _ in range(110):
            self.call(b"PUBLISH", b"foo", b"x" * 1000)
        self.clock.advance(3)
        self.assertFalse(out.disconnecting)

    def test_pipelined_replies_wait_for_the_reader(self) -> None:
        """A client pipelining GETs of a large value gets replies only as fast as it reads."""
        value = b"v" * (512 * 1024)
        self.call(b"SET", b"big", value)
        proto, out = self.connect(port=5001, transport=SlowReader(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5001)))
        count = 40
        proto.dataReceived(resp(b"GET", b"big") * count)
        self.assertLessEqual(len(out.value()), READ_OUTPUT + len(value) + 100)
        proto._outgate.pauseProducing()  # what Twisted does when its buffer is over 64 KB
        self.assertEqual(out.producerState, "paused")
        self.clock.advance(0)
        held = len(out.value())
        self.assertLessEqual(held, READ_OUTPUT + len(value) + 100)
        # Another client is served meanwhile.
        self.assertEqual(self.call(b"PING"), b"+PONG\r\n")
        taken = 0
        for _ in range(count * 2):
            taken += len(out.read())
            proto._outgate.resumeProducing()  # the buffer drained
            self.clock.advance(0)
            if len(out.value()) == out.offset:
                break
            proto._outgate.pauseProducing()
        self.assertEqual(taken, count * (len(value) + len(b"$524288\r\n\r\n")))
        self.assertEqual(out.producerState, "producing")

    def test_held_requests_run_in_order_with_later_reads(self) -> None:
        """Requests read while earlier ones wait for the reader run after them, in order."""
        self.call(b"SET", b"big", b"v" * (READ_OUTPUT + 1))
        proto, out = self.connect(port=5001)
        proto.dataReceived(resp(b"GET", b"big") + resp(b"SET", b"k", b"1")
                           + resp(b"INCR", b"k"))
        proto.dataReceived(resp(b"INCR", b"k"))
        self.clock.advance(0)
        self.assertTrue(out.value().endswith(b"+OK\r\n:2\r\n:3\r\n"), out.value()[-40:])


class UnsentTests(SynchronousTestCase):
    """What counts as a connection's unsent output."""

    def test_twisted_buffer_counted(self) -> None:
        """A TCP transport's dataBuffer past its offset and its temporary buffer are counted."""

        class Transport:
            dataBuffer = b"abcdef"
            offset = 2
            _tempDataLen = 10

        self.assertEqual(buffered(Transport()), 14)
        self.assertEqual(buffered(StringTransport()), 0)


def _rss(pid: int) -> int:
    """A process's resident set size in bytes, from /proc/PID/status."""
    with open("/proc/%d/status" % (pid,)) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _closed_within(sock, seconds: float) -> bytes:
    """Read ``sock`` until the server closes it (or ``seconds`` pass); return what came."""
    sock.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except socket.timeout:
        raise AssertionError("still open after %s s (read %r)" % (seconds, data[:80]))


class KVStoreProcessTests(SynchronousTestCase):
    """The limits of a real ``twistd kvstore`` process, over loopback sockets."""

    def start(self, *config_lines: str, args=()):
        import os
        import shutil
        import tempfile

        from tests.procs import start_kvstore

        data = tempfile.mkdtemp(prefix="kvtwist-limits-")
        self.addCleanup(shutil.rmtree, data, True)
        path = os.path.join(data, "kvstore.conf")
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in config_lines))
        proc = start_kvstore(os.path.join(data, "db"), "--config", path, "--fsync", "no", *args)
        self.addCleanup(proc.stop)
        return proc

    def client(self, port: int):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(sock.close)
        return sock

    def call(self, sock, *argv: bytes, reply_size: int = 0) -> bytes:
        sock.sendall(resp(*argv))
        data = sock.recv(65536)
        while len(data) < reply_size or not data.endswith(b"\r\n"):
            data += sock.recv(65536)
        return data

    def test_sixth_client_refused_with_maxclients_5(self) -> None:
        """With maxclients 5, five clients are served and the sixth gets Redis's error."""
        proc = self.start("maxclients 5")
        clients = [self.client(proc.port) for _ in range(5)]
        for sock in clients:
            self.assertEqual(self.call(sock, b"PING"), b"+PONG\r\n")
        sixth = self.client(proc.port)
        self.assertEqual(_closed_within(sixth, 10), b"-ERR max number of clients reached\r\n")
        info = self.call(clients[0], b"INFO", b"stats")
        self.assertIn(b"rejected_connections:1\r\n", info)

    def test_protected_mode_option_and_backlog(self) -> None:
        """--protected-mode no and a config file's tcp-backlog are the running values."""
        proc = self.start("tcp-backlog 100", args=("--protected-mode", "no"))
        sock = self.client(proc.port)
        self.assertEqual(self.call(sock, b"CONFIG", b"GET", b"protected-mode"),
                         b"*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n")
        self.assertEqual(self.call(sock, b"CONFIG", b"GET", b"tcp-backlog"),
                         b"*2\r\n$11\r\ntcp-backlog\r\n$3\r\n100\r\n")

    def test_idle_client_closed(self) -> None:
        """With timeout 1, an idle client is closed within a few seconds; others stay."""
        proc = self.start("timeout 1")
        idle = self.client(proc.port)
        self.assertEqual(self.call(idle, b"PING"), b"+PONG\r\n")
        self.assertEqual(_closed_within(idle, 10), b"")
        fresh = self.client(proc.port)
        self.assertEqual(self.call(fresh, b"PING"), b"+PONG\r\n")

    def test_pipelined_gigabytes_bounded_rss(self) -> None:
        """A client pipelining 2 GB of GET replies without reading leaves RSS under 300 MB,
        others are served meanwhile, and RSS does not stay up after it is closed."""
        proc = self.start()
        other = self.client(proc.port)
        value = b"v" * (1024 * 1024)
        self.assertEqual(self.call(other, b"SET", b"big", value), b"+OK\r\n")
        self.assertEqual(len(self.call(other, b"GET", b"big", reply_size=len(value))),
                         len(value) + 12)
        baseline = _rss(proc.pid)
        hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(hog.close)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        hog.connect(("127.0.0.1", proc.port))
        hog.sendall(resp(b"GET", b"big") * 2000)  # 2000 x 1 MB of replies, never read
        peak = 0
        for _ in range(20):
            self.assertEqual(self.call(other, b"PING"), b"+PONG\r\n")
            reply = self.call(other, b"GET", b"big", reply_size=len(value))
            self.assertEqual(len(reply), len(value) + 12)
            peak = max(peak, _rss(proc.pid))
        self.assertLess(peak, 300 * 1024 * 1024)
        hog.close()
        self.assertEqual(self.call(other, b"PING"), b"+PONG\r\n")
        after = _rss(proc.pid)
        self.assertLess(after, max(peak, baseline + 64 * 1024 * 1024) + 1)
        print("RSS baseline %d peak %d after %d MB" % (baseline >> 20, peak >> 20, after >> 20))
