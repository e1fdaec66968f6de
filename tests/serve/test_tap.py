"""Tests for kvtwist.serve.tap: options, and ``twistd kvstore`` driven as a user would drive it."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import shutil
import tempfile
from unittest import skipIf

import redis
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.storage import datadir

from kvtwist.serve import tap
from tests.procs import ROOT, TwistdProcess, free_port, start_kvstore, twistd_command


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


    def test_databases(self) -> None:
        """--databases sets how many databases there are (16 by default); bad counts are refused."""
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["databases"], 16)
        options = tap.Options()
        options.parseOptions(["--databases", "4"])
        self.assertEqual(options["databases"], 4)
        for bad in ("0", "many", "70000"):
            self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--databases", bad])


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


    def test_databases_survive_restarts(self) -> None:
        """redis-cli -n 5, redis-py with db=5 and SWAPDB keep their data across kill -9 restarts."""
        data = tempfile.mkdtemp(prefix="kvtwist-restart-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data)
        try:
            cli = subprocess.run(["redis-cli", "-p", str(proc.port), "-n", "5", "set", "k", "five"],
                                 capture_output=True, timeout=30)
            self.assertEqual(cli.stdout.strip(), b"OK")
            r = redis.Redis(port=proc.port, db=7, socket_timeout=10)
            r.set("k", "seven")
            r.swapdb(7, 8)
            r.close()
        finally:
            proc.kill()
        proc = start_kvstore(data)
        try:
            r5 = redis.Redis(port=proc.port, db=5, socket_timeout=10)
            r8 = redis.Redis.from_url("redis://127.0.0.1:%d/8" % (proc.port,), socket_timeout=10)
            self.assertEqual((r5.get("k"), r8.get("k")), (b"five", b"seven"))
            self.assertEqual(redis.Redis(port=proc.port, db=7).get("k"), None)
            info = r5.info("keyspace")
            self.assertEqual((info["db5"]["keys"], info["db8"]["keys"]), (1, 1))
            r5.close()
            r8.close()
        finally:
            proc.stop()

    def test_too_few_databases_is_a_start_up_error(self) -> None:
        """A data directory holding database 5 does not start with --databases 2: it says why."""
        data = tempfile.mkdtemp(prefix="kvtwist-restart-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data)
        try:
            redis.Redis(port=proc.port, db=5, socket_timeout=10).set("k", "v")
        finally:
            proc.stop()
        run = subprocess.run(twistd_command() + ["--pidfile=", "-n", "kvstore", "--data", data,
                                                 "--databases", "2", "--listen",
                                                 "tcp:0:interface=127.0.0.1"],
                             capture_output=True, timeout=60)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn(b"--databases 6", run.stdout + run.stderr)

    def test_writer_process_ends_with_a_killed_server(self) -> None:
        """After a SIGKILL the journal writer exits too, and a restart at once finds the data."""
        data = tempfile.mkdtemp(prefix="kvtwist-writer-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data)
        try:
            r = redis.Redis(port=proc.port, socket_timeout=10)
            info = r.info("journal")
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
            self.assertEqual(r.info("journal")["journal_writer"], "thread")
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
        store_port = free_port()
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


def write_self_signed(directory: str) -> tuple:
    """Write a self-signed key and certificate for 127.0.0.1; return their paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class TLSTests(SynchronousTestCase):
    """The ssl: endpoint works out of the box: twisted[tls] is a dependency."""

    def test_tls_listener(self) -> None:
        """kvstore on an ssl: endpoint serves redis-py over TLS and redis-cli --tls
        (without client certificates: --tls-auth-clients no)."""
        directory = tempfile.mkdtemp(prefix="kvtwist-tls-")
        self.addCleanup(shutil.rmtree, directory, True)
        key, cert = write_self_signed(directory)
        proc = TwistdProcess("kvstore", [
            "--data", os.path.join(directory, "data"), "--tls-auth-clients", "no", "--listen",
            "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (key, cert)])
        self.addCleanup(proc.stop)
        port = proc.wait_for_ports(1)[0]
        client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=cert,
                             socket_timeout=10)
        self.addCleanup(client.close)
        client.set("secret", "over tls")
        self.assertEqual(client.get("secret"), b"over tls")
        cli = subprocess.run(["redis-cli", "--tls", "--cacert", cert, "-p", str(port),
                              "get", "secret"], capture_output=True, timeout=30)
        self.assertEqual(cli.stdout.strip(), b"over tls")


class RequirePassTests(SynchronousTestCase):
    """``--requirepass``: every dialect must log in first."""

    def test_clients_log_in(self) -> None:
        """redis-cli -a, redis-py password=, a telnet AUTH and a JSON AUTH all log in."""
        data = tempfile.mkdtemp(prefix="kvtwist-auth-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data, "--requirepass", "hunter2")
        self.addCleanup(proc.stop)
        denied = redis.Redis(port=proc.port, socket_timeout=10)
        self.addCleanup(denied.close)
        self.assertRaises(redis.AuthenticationError, denied.get, "k")
        r = redis.Redis(port=proc.port, password="hunter2", socket_timeout=10)
        self.addCleanup(r.close)
        r.set("k", "v")
        cli = subprocess.run(["redis-cli", "--no-auth-warning", "-a", "hunter2", "-p",
                              str(proc.port), "get", "k"], capture_output=True, timeout=30)
        self.assertEqual(cli.stdout.strip(), b"v")
        telnet = LineClient(proc.port)
        self.addCleanup(telnet.close)
        self.assertIn(b"NOAUTH", telnet.ask(b"GET k"))
        self.assertEqual(telnet.ask(b"AUTH hunter2"), b"OK")
        self.assertEqual(telnet.ask(b"GET k"), b"\"v\"")
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(b'{"type": "GET", "key": "k"}\n{"type": "AUTH", "password": "hunter2"}\n'
                         b'{"type": "GET", "key": "k"}\n')
            replies = b""
            while replies.count(b"\n") < 3:
                replies += sock.recv(4096)
        lines = [json.loads(line) for line in replies.splitlines()]
        self.assertEqual(lines, [{"error": "NOAUTH Authentication required."}, "OK", "v"])
        self.assertNotIn("hunter2", proc.log)

class ConfigFileOptionsTests(SynchronousTestCase):
    """``--config FILE``: a redis.conf-style file read into options and parameters."""

    def write(self, text: str) -> str:
        directory = tempfile.mkdtemp(prefix="kvtwist-conf-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "kv.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_directives_map_to_options(self) -> None:
        """port, bind, dir, appendfsync and proto-max-bulk-len set options; parameters wait."""
        path = self.write("port 7001\nbind 127.0.0.1 -::1\ndir /tmp/kvd\nappendfsync everysec\n"
                          "proto-max-bulk-len 1mb\nhz 20\nslowlog-log-slower-than \"5\"\n")
        options = tap.Options()
        options.parseOptions(["--config", path])
        self.assertEqual(options["listen"], ["tcp:7001:interface=127.0.0.1",
                                             "tcp:7001:interface=\\:\\:1"])
        self.assertEqual((options["data"], options["fsync"], options["max-bulk"]),
                         ("/tmp/kvd", "everysec", 1024 * 1024))
        self.assertEqual(options.params, [("hz", "20", path + ":6"),
                                          ("slowlog-log-slower-than", "5", path + ":7")])

    def test_command_line_overrides(self) -> None:
        """An option given on the command line wins over the file, before or after --config."""
        path = self.write("port 7001\ndir /tmp/kvd\nappendfsync everysec\n")
        options = tap.Options()
        options.parseOptions(["--fsync", "always", "--config", path, "-d", "/tmp/other",
                              "--listen", "tcp:7002"])
        self.assertEqual((options["fsync"], options["data"], options["listen"]),
                         ("always", "/tmp/other", ["tcp:7002"]))

    def test_unknown_directive(self) -> None:
        """An unknown directive is a usage error naming the file and its line number."""
        path = self.write("# settings\nhz 10\nno-such-directive 100\n")
        error = self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                                  ["--config", path])
        self.assertEqual(str(error), "%s:3: unknown directive or wrong number of arguments: "
                                     "'no-such-directive 100'" % (path,))
        error = self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                                  ["--config", path + ".missing"])
        self.assertIn("No such file", str(error))

    def test_hz_drives_the_sweep(self) -> None:
        """StoreService sweeps expired keys hz times a second, changed while it runs."""
        from twisted.internet.task import Clock

        from kvtwist.engine.store import NullJournal, Store

        class Journal(NullJournal):
            def start(self):
                pass

            def stop(self):
                pass

        clock = Clock()
        store = Store(clock)
        sweeps = []
        store.databases.sweep = lambda: sweeps.append(clock.seconds())
        service = tap.StoreService(store, Journal(), clock)
        service.set_hz(20)
        service.startService()
        clock.pump([0.05] * 4)
        self.assertEqual(len(sweeps), 4)
        service.set_hz(1)
        clock.pump([0.5] * 4)
        self.assertEqual(len(sweeps), 6)
        service.stopService()


class GarbageCollectorPolicyTests(SynchronousTestCase):
    """kvstore's service sets the collector policy while running and restores it on stop."""

    @skipIf(platform.python_implementation() != "CPython", "CPython's collector only")
    def test_policy_applied_and_restored(self) -> None:
        """startService freezes what recovery loaded and raises thresholds; stop undoes both.

        Before, full collections walked every container the keyspace holds (the scan order
        list of a million keys: 25-50 ms per pass, every client waiting).
        """
        import gc

        from twisted.internet.task import Clock

        from kvtwist.engine.store import NullJournal, Store

        class Journal(NullJournal):
            def start(self):
                pass

            def stop(self):
                pass

        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        self.addCleanup(gc.unfreeze)
        service = tap.StoreService(Store(Clock()), Journal(), Clock())
        service.startService()
        self.assertEqual(gc.get_threshold(), tap.GC_THRESHOLDS)
        self.assertGreater(gc.get_freeze_count(), 0)
        self.successResultOf(service.stopService())
        self.assertEqual(gc.get_threshold(), before)
        self.assertEqual(gc.get_freeze_count(), 0)


class ConfigFileServerTests(SynchronousTestCase):
    """A real ``twistd kvstore --config FILE``."""

    def test_config_file_end_to_end(self) -> None:
        """The file's settings are in force, CONFIG SET changes them, REWRITE writes them back."""
        directory = tempfile.mkdtemp(prefix="kvtwist-conf-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "kv.conf")
        with open(path, "w") as f:
            f.write("# kvstore settings\ndir \"%s\"\nappendfsync everysec\nhz 25\n"
                    "slowlog-log-slower-than 0\nmy-own-comment-free-line-is-fine-not\n"
                    % (os.path.join(directory, "data"),))
        proc = TwistdProcess("kvstore", ["--config", path])
        self.assertIn("my-own-comment-free-line-is-fine-not", proc.log + proc.wait_for_line(
            "unknown directive"))
        proc.stop()
        with open(path, "w") as f:
            f.write("# kvstore settings\ndir \"%s\"\nappendfsync everysec\nhz 25\n"
                    "slowlog-log-slower-than 0\n" % (os.path.join(directory, "data"),))
        proc = start_kvstore(os.path.join(directory, "ignored"), "--config", path,
                             "--fsync", "no")
        try:
            r = redis.Redis(port=proc.port, socket_timeout=10)
            self.addCleanup(r.close)
            settings = r.config_get("*")
            self.assertEqual(settings["dir"], os.path.join(directory, "ignored"))
            self.assertEqual((settings["appendfsync"], settings["hz"]), ("no", "25"))
            self.assertEqual(settings["port"], str(proc.port))
            self.assertTrue(r.set("k", "v"))
            self.assertEqual(r.slowlog_get(1)[0]["command"], b"SET k v")
            self.assertTrue(r.config_set("proto-max-bulk-len", "1mb"))
            with self.assertRaises(redis.ResponseError) as caught:
                r.set("big", "x" * (2 * 1024 * 1024))
            self.assertIn("invalid bulk length", str(caught.exception))
            r = redis.Redis(port=proc.port, socket_timeout=10)
            self.addCleanup(r.close)
            self.assertTrue(r.config_set("hz", "50"))
            self.assertTrue(r.config_rewrite())
            self.assertEqual(r.info("server")["config_file"], path)
            self.assertGreater(r.info("memory")["used_memory_rss"], 0)
        finally:
            proc.stop()
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.startswith("# kvstore settings\n"))
        self.assertIn("\nhz 50\n", text)
        self.assertIn("\nappendfsync no\n", text)
        self.assertIn("# Generated by CONFIG REWRITE\n", text)
        self.assertIn("\nproto-max-bulk-len 1048576\n", text)

    def test_bad_parameter_value(self) -> None:
        """A refused parameter value stops start-up with the file, line and reason."""
        directory = tempfile.mkdtemp(prefix="kvtwist-conf-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "kv.conf")
        with open(path, "w") as f:
            f.write("hz 10\nslowlog-max-len many\n")
        proc = TwistdProcess("kvstore", ["--config", path, "--data",
                                         os.path.join(directory, "data")])
        line = proc.wait_for_line("slowlog-max-len")
        self.assertIn("%s:2: 'slowlog-max-len many': argument couldn't be parsed into an "
                      "integer" % (path,), line + proc.log)
        self.assertNotEqual(proc.stop(), 0)


class LimitsOptionsTests(SynchronousTestCase):
    """twistd kvstore's listen backlog and --protected-mode."""

    def test_backlog_added_to_listen_descriptions(self) -> None:
        """tcp-backlog is added to tcp, ssl and unix endpoints that do not name one."""
        self.assertEqual(tap.with_backlog("tcp:7379:interface=127.0.0.1", 511),
                         "tcp:7379:interface=127.0.0.1:backlog=511")
        self.assertEqual(tap.with_backlog("unix:/tmp/kv.sock", 100),
                         "unix:/tmp/kv.sock:backlog=100")
        self.assertEqual(tap.with_backlog("tcp:7379:backlog=5", 511), "tcp:7379:backlog=5")
        self.assertEqual(tap.with_backlog("systemd:domain=INET:index=0", 511),
                         "systemd:domain=INET:index=0")

    def test_protected_mode_option(self) -> None:
        """--protected-mode takes yes or no and is left unset by default."""
        options = tap.Options()
        options.parseOptions(["--protected-mode", "no"])
        self.assertEqual(options["protected-mode"], "no")
        options = tap.Options()
        options.parseOptions([])
        self.assertIsNone(options["protected-mode"])
