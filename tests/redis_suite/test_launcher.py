"""Tests of the launcher that runs kvstore as the suite's src/redis-server."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import free_port
from tests.redis_suite import launcher
from tests.redis_suite.launcher import MARK, LaunchError, translate, twistd_args
from tests.redis_suite.runner import LoggedServer, install_servers

# What start_server writes from tests/assets/default.conf (port, dir and unixsocket its own).
HARNESS_CONF = """always-show-logo yes
notify-keyspace-events KEA
daemonize no
pidfile /var/run/redis.pid
port %(port)d
timeout 0
bind 127.0.0.1
loglevel verbose
logfile ''
databases 16
latency-monitor-threshold 1
repl-diskless-sync-delay 0
save 900 1
rdbcompression yes
dbfilename dump.rdb
dir ./tests/tmp/server.1.1
slave-serve-stale-data yes
appendonly no
appendfsync everysec
no-appendfsync-on-rewrite no
activerehashing yes
enable-protected-configs yes
enable-debug-command yes
enable-module-command yes
propagation-error-behavior panic
unixsocket %(socket)s
"""
KEPT = ["notify-keyspace-events KEA", "port 21432", "bind 127.0.0.1", "databases 16",
        "latency-monitor-threshold 1", "dir ./tests/tmp/server.1.1", "appendfsync everysec"]


def _conf(port=21432, socket_path="/t/socket") -> list:
    return (HARNESS_CONF % {"port": port, "socket": socket_path}).splitlines()


class TranslateTests(SynchronousTestCase):
    def test_default_conf(self):
        """Of the harness's default.conf only directives kvstore knows stay live; the others
        are commented out with the mark, and port, bind and unixsocket become endpoints."""
        lines, listen, unix = translate(_conf())
        self.assertEqual([line for line in lines if not line.startswith(MARK)], KEPT)
        self.assertEqual(len(lines), len(_conf()))
        self.assertIn(MARK + "save 900 1", lines)
        self.assertEqual(listen, ["tcp:21432:interface=127.0.0.1", "unix:/t/socket:lockfile=0"])
        self.assertEqual(unix, "/t/socket")

    def test_idempotent(self):
        """Translating a translated file (a restart_server) changes nothing and still finds
        the unix socket in its marked line."""
        once, listen, unix = translate(_conf())
        self.assertEqual(translate(once), (once, listen, unix))

    def test_other_values_kept(self):
        """A harmless directive at another value than kvstore's behaviour is left for kvstore
        to refuse; an unknown directive too."""
        lines, _, _ = translate(["timeout 5", "save 60 100", "appendonly yes", "maxclients 10",
                              "loglevel debug"])
        self.assertEqual(lines, ["timeout 5", "save 60 100", "appendonly yes", "maxclients 10",
                                 MARK + "loglevel debug"])

    def test_binds(self):
        """Every bind address is an endpoint (Redis's "-" prefix dropped, "*" any IPv4);
        port 0 listens on the unix socket only."""
        _, listen, _ = translate(["port 7000", "bind -127.0.0.1 * ::1"])
        self.assertEqual(listen, ["tcp:7000:interface=127.0.0.1", "tcp:7000:interface=0.0.0.0",
                                  "tcp:7000:interface=\\:\\:1"])
        _, listen, _ = translate(["port 0", "unixsocket /s"])
        self.assertEqual(listen, ["unix:/s:lockfile=0"])

    def test_long_unix_path_cut(self):
        """A unix socket path longer than sun_path holds is cut as Redis cuts it."""
        path = "/" + "d" * 120
        _, listen, unix = translate(["unixsocket " + path])
        self.assertEqual(unix, path[:107])
        self.assertEqual(listen[-1], "unix:%s:lockfile=0" % (path[:107],))

    def test_nothing_to_listen_on(self):
        """A bad port, or port 0 without a unix socket, cannot be launched."""
        self.assertRaises(LaunchError, translate, ["port 99999"])
        self.assertRaises(LaunchError, translate, ["port 0"])

    def test_prepare_in_place(self):
        """The harness's own file is translated in place (so that CONFIG REWRITE and a
        restart see one file) and a socket left at the unixsocket path is removed, as Redis
        removes it; a file needing nothing is not rewritten."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        path, socket_path = os.path.join(root, "redis.conf"), os.path.join(root, "socket")
        left = socket.socket(socket.AF_UNIX)
        left.bind(socket_path)
        left.close()
        with open(path, "w") as handle:
            handle.write("\n".join(_conf(socket_path=socket_path)) + "\n")
        self.assertEqual(launcher.prepare(path)[0], "tcp:21432:interface=127.0.0.1")
        with open(path) as handle:
            self.assertEqual(handle.read().splitlines(),
                             translate(_conf(socket_path=socket_path))[0])
        self.assertFalse(os.path.exists(socket_path))
        with open(path, "w") as handle:
            handle.write("port 7000\n")
        inode = os.stat(path).st_ino
        launcher.prepare(path)
        self.assertEqual(os.stat(path).st_ino, inode)

    def test_twistd_args(self):
        """kvstore runs in the foreground without a pidfile, on the file, the endpoints and
        the runner's extra options."""
        self.assertEqual(twistd_args("c.conf", ["tcp:1", "unix:/s"], ["--inline-replies", "resp"]),
                         ["--pidfile=", "--nodaemon", "--logfile=-", "kvstore", "--config",
                          "c.conf", "--listen", "tcp:1", "--listen", "unix:/s",
                          "--inline-replies", "resp"])


class MainTests(SynchronousTestCase):
    def setUp(self):
        self.out = []
        self.patch(launcher, "write", lambda fd, text: self.out.append((fd, text)))

    def test_command_line_directives_refused(self):
        """Redis's ``--name value`` arguments after the file are refused at once: the reason,
        then the PID line that stops the harness waiting."""
        self.assertEqual(launcher.main(["--", "a.conf", "--port", "1"]), 1)
        self.assertEqual(self.out[0][0], 2)
        self.assertIn("takes no command-line directives", self.out[0][1])
        self.assertRegex(self.out[-1][1], " PID: %d\n$" % (os.getpid(),))

    def test_unreadable_file(self):
        """A missing CONFIGFILE is reported the same way."""
        self.assertEqual(launcher.main(["/nonexistent/redis.conf"]), 1)
        self.assertIn("/nonexistent/redis.conf", self.out[0][1])
        self.assertIn(" PID: ", self.out[-1][1])


class LaunchTests(SynchronousTestCase):
    """The written src/redis-server runs a real kvstore (a process on 127.0.0.1)."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        os.makedirs(os.path.join(self.root, "tests", "tmp", "server.1.1"))
        install_servers(self.root, "kvstore", [])

    def _launch(self, text: str) -> LoggedServer:
        path = os.path.join(self.root, "tests", "tmp", "redis.conf.1.1")
        with open(path, "w") as handle:
            handle.write(text)
        server = LoggedServer([os.path.join("src", "redis-server"), path], cwd=self.root)
        self.addCleanup(server.close)
        self.addCleanup(server.process.kill)
        return server

    def test_start_ping_stop(self):
        """kvstore logs the PID the harness started (the script execs) and that it is ready,
        answers PING on its port and unix socket, and shuts down on SIGTERM (then ends by
        that signal, as twistd does)."""
        port = free_port()
        socket_path = os.path.join(self.root, "tests", "tmp", "server.1.1", "socket")
        server = self._launch(HARNESS_CONF % {"port": port, "socket": socket_path})
        server.wait_ready(60)
        self.assertRegex(server.log, " PID: %d\n" % (server.process.pid,))
        for family, address in ((socket.AF_INET, ("127.0.0.1", port)),
                                (socket.AF_UNIX, socket_path)):
            client = socket.socket(family, socket.SOCK_STREAM)
            client.settimeout(30)
            client.connect(address)
            client.sendall(b"*1\r\n$4\r\nPING\r\n")
            self.assertEqual(client.recv(100), b"+PONG\r\n")
            client.close()
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(server.process.wait(30), -signal.SIGTERM)
        server.close()
        self.assertIn("Server Shut Down.", server.log)

    def test_refused_directive(self):
        """A directive kvstore does not know fails the start with kvstore's reason naming the
        line, then the PID line."""
        server = self._launch("port %d\nmaxclients-typo 10\n" % (free_port(),))
        self.assertEqual(server.process.wait(60), 1)
        server.close()
        self.assertIn("maxclients-typo 10", server.log)
        lines = server.log.splitlines()
        self.assertTrue(re.search(" PID: %d$" % (server.process.pid,), lines[-1]), lines)

    def test_unix_socket_failure(self):
        """A unix socket kvstore cannot bind fails the start (the PID line, not the busy-port
        line on which the harness would retry forever)."""
        server = self._launch("port %d\nunixsocket %s\n" % (
            free_port(), os.path.join(self.root, "missing", "socket")))
        self.assertEqual(server.process.wait(60), 1)
        server.close()
        self.assertNotIn("Failed listening", server.log)
        self.assertRegex(server.log.splitlines()[-1], " PID: %d$" % (server.process.pid,))
