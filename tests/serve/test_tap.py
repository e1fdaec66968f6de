"""Tests for kvtwist.serve.tap: options, and ``twistd kvstore`` driven as a user would drive it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import shutil
import tempfile

import redis
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.storage import datadir

from kvtwist.serve import tap
from tests.procs import ROOT, TwistdProcess, start_kvstore, twistd_command


class OptionsTests(SynchronousTestCase):
    """Parsing of ``twistd kvstore`` options."""

    def test_defaults(self) -> None:
        """With no options the server listens on loopback 7379 and fsyncs always."""
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["listen"], ["tcp:7379:interface=127.0.0.1"])
        self.assertEqual(options["data"], "kvdata")
        self.assertEqual(options["fsync"], "always")
        self.assertEqual(options["max-bulk"], 512 * 1024 * 1024)

    def test_listen_repeats(self) -> None:
        """--listen may be given several times, replacing the default."""
        options = tap.Options()
        options.parseOptions(["--listen", "tcp:1:interface=127.0.0.1", "--listen", "unix:/tmp/s"])
        self.assertEqual(options["listen"], ["tcp:1:interface=127.0.0.1", "unix:/tmp/s"])

    def test_bad_fsync(self) -> None:
        """An unknown --fsync policy is a usage error naming the choices."""
        options = tap.Options()
        error = self.assertRaises(usage.UsageError, options.parseOptions, ["--fsync", "sometimes"])
        self.assertIn("always, everysec, no", str(error))

    def test_journal_writer(self) -> None:
        """The journal is written by a child process unless --journal-writer thread is given."""
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["journal-writer"], "process")
        options = tap.Options()
        options.parseOptions(["--journal-writer", "thread"])
        self.assertEqual(options["journal-writer"], "thread")
        error = self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                                  ["--journal-writer", "fork"])
        self.assertIn("process or thread", str(error))

    def test_inline_replies(self) -> None:
        """--inline-replies is text by default, resp on request, and nothing else."""
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["inline-replies"], "text")
        options = tap.Options()
        options.parseOptions(["--inline-replies", "resp"])
        self.assertEqual(options["inline-replies"], "resp")
        error = self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                                  ["--inline-replies", "json"])
        self.assertIn("text or resp", str(error))

    def test_sizes(self) -> None:
        """Sizes accept kb/mb/gb suffixes, and a bad size is a usage error."""
        options = tap.Options()
        options.parseOptions(["--max-bulk", "1mb", "--compact-min", "10k"])
        self.assertEqual((options["max-bulk"], options["compact-min"]), (2 ** 20, 10 * 1024))
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--max-bulk", "lots"])


class LineClient:
    """A telnet-style client: sends lines, reads CRLF-terminated reply lines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, line: bytes) -> None:
        self.sock.sendall(line + b"\r\n")

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r")

    def ask(self, line: bytes) -> bytes:
        self.send(line)
        return self.line()

    def closed(self) -> bool:
        return self.sock.recv(1) == b""

    def close(self) -> None:
        self.sock.close()


class ServerProcessTests(SynchronousTestCase):
    """A ``twistd -n kvstore`` process per test, driven by real clients."""

    def setUp(self) -> None:
        # A process per test (not per class): trial has no class fixtures, and a fresh
        # server means no test sees another's keys or connections.
        data = tempfile.mkdtemp(prefix="kvtwist-tap-")
        self.addCleanup(shutil.rmtree, data, True)
        self.proc = start_kvstore(data)
        self.addCleanup(self.proc.stop)
        self.redis = redis.Redis(host="127.0.0.1", port=self.proc.port, socket_timeout=10)
        self.addCleanup(self.redis.close)

    def telnet(self) -> LineClient:
        client = LineClient(self.proc.port)
        self.addCleanup(client.close)
        return client

    def test_seed_two_user_session(self) -> None:
        """Alice stores and overwrites pairs over telnet; Bob reads them, misses included."""
        alice = self.telnet()
        for line in (b"SET key value", b"PUT password Longsword", b"SET key ADifferentValue",
                     b"MSET key1 value1 key2 value2 key3 value3 key4 value4"):
            self.assertEqual(alice.ask(line), b"OK")
        self.assertEqual(alice.ask(b"QUIT"), b"OK")
        self.assertTrue(alice.closed())
        bob = self.telnet()
        self.assertEqual(bob.ask(b"GET key"), b'"ADifferentValue"')
        self.assertEqual(bob.ask(b"GET password"), b'"Longsword"')
        for _ in range(3):
            self.assertEqual(bob.ask(b"GET username"), b"(nil)")
        bob.send(b"MGET key1 key2 key3 key4 key5")
        self.assertEqual([bob.line() for _ in range(5)],
                         [b'1) "value1"', b'2) "value2"', b'3) "value3"', b'4) "value4"',
                          b"5) (nil)"])
        self.assertEqual(bob.ask(b"REMOVE key4"), b"(integer) 1")
        bob.send(b"PRINT")
        self.assertEqual([bob.line() for _ in range(6)],
                         [b'"key" => "ADifferentValue"', b'"key1" => "value1"',
                          b'"key2" => "value2"', b'"key3" => "value3"',
                          b'"password" => "Longsword"', b"(5 pairs)"])
        self.assertEqual(bob.ask(b"quit"), b"OK")
        self.assertTrue(bob.closed())

    def test_redis_py(self) -> None:
        """redis-py works unchanged: strings, binary values, TTLs, counters, pipelines."""
        r = self.redis
        self.assertTrue(r.set("greeting", "hello"))
        self.assertEqual(r.get("greeting"), b"hello")
        binary = bytes(range(256))
        r.set(b"bin\x00key", binary)
        self.assertEqual(r.get(b"bin\x00key"), binary)
        self.assertEqual(r.incr("n"), 1)
        self.assertEqual(r.incrby("n", 41), 42)
        r.set("t", "x", ex=100)
        self.assertTrue(0 < r.ttl("t") <= 100)
        self.assertEqual(r.mget(["greeting", "missing"]), [b"hello", None])
        pipe = r.pipeline(transaction=False)
        for i in range(100):
            pipe.set("p%d" % i, i)
        self.assertEqual(pipe.execute(), [True] * 100)
        self.assertEqual(r.dbsize(), 104)
        self.assertEqual(r.delete("greeting", "missing"), 1)
        with self.assertRaises(redis.ResponseError) as caught:
            r.execute_command("GET")
        self.assertIn("wrong number of arguments", str(caught.exception))

    def test_redis_py_both_protocols(self) -> None:
        """redis-py gets the same answers over RESP2 and over RESP3 (HELLO 3)."""
        for protocol in (2, 3):
            r = redis.Redis(port=self.proc.port, protocol=protocol, socket_timeout=10)
            self.addCleanup(r.close)
            r.set("p", "v")
            self.assertEqual((r.get("p"), r.get("none")), (b"v", None))
            self.assertEqual(r.config_get("appendfsync"), {"appendfsync": "always"})
            self.assertEqual(r.connection_pool.get_connection().protocol, protocol)

    def test_json_client(self) -> None:
        """The seed's JSON-lines client gets its replies in the seed's shapes."""
        sock = socket.create_connection(("127.0.0.1", self.proc.port), timeout=10)
        self.addCleanup(sock.close)
        reader = sock.makefile("rb")
        requests = [{"type": "SET", "key": "a", "value": "1"},
                    {"type": "MSET", "value": {"b": "2", "c": "3"}},
                    {"type": "MGET", "key": ["a", "b", "z"]},
                    {"type": "DELETE", "key": "a"},
                    {"type": "GET", "key": "a"},
                    {"type": "FLUSH"},
                    {"type": "GET", "key": "b"}]
        sock.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        replies = [json.loads(reader.readline()) for _ in requests]
        self.assertEqual(replies, ["OK", "OK", {"a": "1", "b": "2", "z": None}, "1", None,
                                   "OK", None])

    def test_bad_input_does_not_disturb_others(self) -> None:
        """Malformed requests get errors while another client keeps being served."""
        self.redis.set("k", "v")
        bad = socket.create_connection(("127.0.0.1", self.proc.port), timeout=10)
        self.addCleanup(bad.close)
        bad.sendall(b"*2\r\n$3\r\nGET\r\n$abc\r\n")
        self.assertEqual(bad.recv(1024), b"-ERR Protocol error: invalid bulk length\r\n")
        self.assertEqual(bad.recv(1024), b"")
        long_line = self.telnet()
        long_line.sock.sendall(b"x" * (65 * 1024))
        self.assertEqual(long_line.line(), b"(error) ERR Protocol error: too big inline request")
        self.assertEqual(self.redis.get("k"), b"v")

    def test_redis_cli(self) -> None:
        """redis-cli talks to kvstore as to redis-server."""
        out = subprocess.run(["redis-cli", "-p", str(self.proc.port), "set", "cli", "yes"],
                             capture_output=True, timeout=30)
        self.assertEqual(out.stdout, b"OK\n")
        out = subprocess.run(["redis-cli", "-p", str(self.proc.port), "get", "cli"],
                             capture_output=True, timeout=30)
        self.assertEqual(out.stdout, b"yes\n")

    def test_redis_benchmark(self) -> None:
        """redis-benchmark runs SET, GET and MSET without an error on kvstore's default reactor."""
        self.assertIn("reactor class: kvtwist.loop.epoll.KVEPollReactor", self.proc.log)
        out = subprocess.run(
            ["redis-benchmark", "-p", str(self.proc.port), "-t", "set,get,mset", "-n", "2000",
             "-c", "5", "-q", "--csv"], capture_output=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(b"ERR", out.stdout + out.stderr)
        self.assertIn(b'"MSET (10 keys)"', out.stdout)


class RestartTests(SynchronousTestCase):
    """Data written before a restart is there after it."""

    def test_data_survives_clean_restart_and_kill(self) -> None:
        """Acknowledged writes survive a SIGTERM restart and a SIGKILL restart."""
        data = tempfile.mkdtemp(prefix="kvtwist-restart-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data)
        try:
            r = redis.Redis(port=proc.port, socket_timeout=10)
            r.mset({"a": "1", "b": "2"})
            r.set("gone", "x")
            r.delete("gone")
            r.set("ttl", "y", ex=1000)
            r.close()
        finally:
            proc.stop()
        proc = start_kvstore(data)
        try:
            r = redis.Redis(port=proc.port, socket_timeout=10)
            self.assertEqual(r.mget(["a", "b", "gone"]), [b"1", b"2", None])
            self.assertTrue(900 < r.ttl("ttl") <= 1000)
            r.set("c", "3")
            r.close()
        finally:
            proc.kill()
        proc = start_kvstore(data)
        try:
            r = redis.Redis(port=proc.port, socket_timeout=10)
            self.assertEqual(r.mget(["a", "b", "c"]), [b"1", b"2", b"3"])
            r.close()
        finally:
            proc.stop()
        self.assertIn("keys loaded", proc.log)


    def test_writer_process_ends_with_a_killed_server(self) -> None:
        """After a SIGKILL the journal writer exits too, and a restart at once finds the data."""
        data = tempfile.mkdtemp(prefix="kvtwist-writer-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data)
        try:
            r = redis.Redis(port=proc.port, socket_timeout=10)
            info = r.info("persistence")
            self.assertEqual(info["journal_writer"], "process")
            writer_pid = info["journal_writer_pid"]
            r.set("k", "v")
            r.close()
        finally:
            proc.kill()
        # The writer holds the directory's lock until it exits: taking it waits for that.
        os.close(datadir.lock_directory(data, 30.0))
        self.assertFalse(datadir._alive(str(writer_pid)))
        proc = start_kvstore(data, "--journal-writer", "thread")
        try:
            r = redis.Redis(port=proc.port, socket_timeout=10)
            self.assertEqual(r.get("k"), b"v")
            self.assertEqual(r.info("persistence")["journal_writer"], "thread")
            r.close()
        finally:
            proc.stop()


class DataDirectoryLockTests(SynchronousTestCase):
    """Two servers never append to one data directory."""

    def test_second_server_refused(self) -> None:
        """A second kvstore on a directory in use exits with a clear error; the first serves on."""
        data = tempfile.mkdtemp(prefix="kvtwist-lock-")
        self.addCleanup(shutil.rmtree, data, True)
        first = start_kvstore(data)
        self.addCleanup(first.stop)
        second = TwistdProcess("kvstore", ["--listen", "tcp:0:interface=127.0.0.1",
                                           "--data", data])
        self.assertNotEqual(second.process.wait(60), 0)
        second.stop()
        self.assertIn("in use by another process (pid %d)" % (first.pid,), second.log)
        r = redis.Redis(port=first.port, socket_timeout=10)
        self.addCleanup(r.close)
        self.assertTrue(r.set("still", "here"))


class PluginTests(SynchronousTestCase):
    """The twistd plugins and kv.tac."""

    def test_twistd_lists_plugins(self) -> None:
        """``twistd --help`` lists kvstore and kvproxy."""
        out = subprocess.run(twistd_command() + ["--help"], cwd=ROOT,
                             capture_output=True, timeout=60)
        self.assertIn(b"kvstore", out.stdout)
        self.assertIn(b"kvproxy", out.stdout)

    def test_version(self) -> None:
        """``twistd kvstore --version`` prints the kvtwist version."""
        out = subprocess.run(twistd_command() + ["kvstore", "--version"],
                             cwd=ROOT, capture_output=True, timeout=60)
        self.assertIn(b"kvtwist 0.", out.stdout)

    def test_kv_tac(self) -> None:
        """``twistd -ny kv.tac`` runs the store and the proxy in front of it in one process."""
        work = tempfile.mkdtemp(prefix="kvtwist-tac-")
        self.addCleanup(shutil.rmtree, work, True)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        store_port = probe.getsockname()[1]
        probe.close()
        env = {"KVTWIST_STORE_LISTEN": "tcp:%d:interface=127.0.0.1" % store_port,
               "KVTWIST_PROXY_LISTEN": "tcp:0:interface=127.0.0.1",
               "KVTWIST_BACKEND": "tcp:127.0.0.1:%d" % store_port}
        proc = TwistdProcess(os.path.join(ROOT, "kv.tac"), [], cwd=work, tac=True, env=env)
        try:
            ports = proc.wait_for_ports(2)
            proxy_port = [port for port in ports if port != store_port][0]
            direct = redis.Redis(port=store_port, socket_timeout=10)
            via = redis.Redis(port=proxy_port, socket_timeout=10)
            self.assertTrue(direct.set("tac", "ok"))
            self.assertEqual(via.get("tac"), b"ok")
            self.assertTrue(via.set("tac", "again"))
            self.assertEqual(direct.get("tac"), b"again")
            direct.close()
            via.close()
        finally:
            proc.stop()
        self.assertTrue(os.path.isdir(os.path.join(work, "kvdata")))
