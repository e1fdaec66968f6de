"""Tests for kvtwist.serve.tap's ACL users: ``twistd kvstore --aclfile`` driven by redis-cli
and redis-py as an operator would (the issue's Done-when for ACL users)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import redis
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.serve import tap
from tests.procs import start_kvstore

RULES = ["on", ">s3cret", "~app:*", "+@read", "+@write", "-@dangerous"]


class AclFileOptionTests(SynchronousTestCase):
    """--aclfile is an option of twistd kvstore."""

    def test_option(self) -> None:
        """--aclfile is accepted and kept; nothing is set without it."""
        options = tap.Options()
        options.parseOptions([])
        self.assertIsNone(options["aclfile"])
        options = tap.Options()
        options.parseOptions(["--aclfile", "/tmp/users.acl"])
        self.assertEqual(options["aclfile"], "/tmp/users.acl")
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--aclfile"])


class AclProcessTests(SynchronousTestCase):
    """A real kvstore process with ACL users."""

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="kvtwist-acl-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.aclfile = os.path.join(self.directory, "users.acl")
        with open(self.aclfile, "w") as handle:
            handle.write("user default on nopass ~* &* +@all\n")
        self.proc = start_kvstore(os.path.join(self.directory, "data"),
                                  "--aclfile", self.aclfile)
        self.addCleanup(self.proc.stop)
        self.admin = redis.Redis(port=self.proc.port, socket_timeout=10)
        self.addCleanup(self.admin.close)

    def cli(self, *args: str) -> str:
        """Run redis-cli against the server; return its output."""
        if shutil.which("redis-cli") is None:
            self.skipTest("no redis-cli")
        result = subprocess.run(["redis-cli", "-p", str(self.proc.port)] + list(args),
                                capture_output=True, timeout=30, text=True)
        return result.stdout.strip()

    def test_limited_user(self) -> None:
        """A user limited to ~app:* and +@read +@write -@dangerous gets NOPERM outside its
        keys and for FLUSHALL, and ACL LOG shows both; redis-cli --user and redis-py log in."""
        self.admin.execute_command("ACL", "SETUSER", "app", *RULES)
        self.assertEqual(self.cli("--user", "app", "--pass", "s3cret", "--no-auth-warning",
                                  "SET", "app:1", "v"), "OK")
        self.assertIn("NOPERM this user has no permissions to run the 'flushall' command",
                      self.cli("--user", "app", "--pass", "s3cret", "--no-auth-warning",
                               "FLUSHALL"))
        user = redis.Redis(port=self.proc.port, username="app", password="s3cret",
                           socket_timeout=10)
        self.addCleanup(user.close)
        self.assertEqual(user.get("app:1"), b"v")
        with self.assertRaises(redis.exceptions.NoPermissionError) as raised:
            user.get("other")
        self.assertIn("no permissions to access one of the keys", str(raised.exception))
        with self.assertRaises(redis.exceptions.NoPermissionError):
            user.flushall()
        self.assertEqual(self.admin.exists("app:1"), 1)
        reasons = [(_text(entry["reason"]), _text(entry["object"]))
                   for entry in self.admin.acl_log()]
        self.assertIn(("key", "other"), reasons)
        self.assertIn(("command", "flushall"), reasons)
        with self.assertRaises(redis.exceptions.AuthenticationError):
            redis.Redis(port=self.proc.port, username="app", password="wrong",
                        socket_timeout=10).ping()

    def test_save_and_restart(self) -> None:
        """ACL SAVE writes the aclfile; a restarted server loads the users from it."""
        self.admin.execute_command("ACL", "SETUSER", "app", *RULES)
        self.assertEqual(self.admin.execute_command("ACL", "SAVE"), b"OK")
        with open(self.aclfile) as handle:
            saved = handle.read()
        self.assertIn("user app on #", saved)
        self.assertNotIn("s3cret", saved)
        with self.assertRaises(redis.exceptions.ResponseError) as raised:
            self.admin.config_set("aclfile", "/tmp/elsewhere")
        self.assertIn("can't set immutable config", str(raised.exception))
        self.proc.stop()
        self.proc = start_kvstore(os.path.join(self.directory, "data"),
                                  "--aclfile", self.aclfile)
        self.addCleanup(self.proc.stop)
        user = redis.Redis(port=self.proc.port, username="app", password="s3cret",
                           socket_timeout=10)
        self.addCleanup(user.close)
        self.assertEqual(user.set("app:2", "w"), True)
        with self.assertRaises(redis.exceptions.NoPermissionError):
            user.flushall()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
