"""Tests for kvtwist.engine.acl_file: ACL SAVE and LOAD with an aclfile, against redis-server."""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.acl_file import load_file
from kvtwist.engine.store import Store
from kvtwist.engine.config import ConfigError, configure
from kvtwist.wire.replies import to_resp
from tests.redisref import RawConnection, start_redis_or_skip


class FileTests(SynchronousTestCase):
    """ACL SAVE and LOAD with an aclfile, as Redis's."""

    def test_save_load_round_trip(self):
        """Users saved and loaded again are the same; a broken file changes nothing."""
        directory = tempfile.mkdtemp()
        self.addCleanup(lambda: [os.unlink(os.path.join(directory, name))
                                 for name in os.listdir(directory)] and os.rmdir(directory))
        path = os.path.join(directory, "users.acl")
        with open(path, "w") as handle:
            handle.write("user default on nopass ~* &* +@all\n")
        server = start_redis_or_skip("--aclfile", path)
        self.addCleanup(server.stop)
        theirs = RawConnection(server.port)
        self.addCleanup(theirs.close)
        store = Store(Clock(), config={"aclfile": path})
        ours = store.new_session()

        def both(*argv):
            expected = theirs.call(list(argv))
            self.assertEqual(to_resp(ours.execute(list(argv))), expected, argv)
            return expected

        both(b"ACL", b"SETUSER", b"app", b"on", b">pw", b"~app:*", b"+get", b"&c")
        both(b"ACL", b"SAVE")
        with open(path) as handle:
            saved = handle.read()
        both(b"ACL", b"SETUSER", b"other", b"on")
        both(b"ACL", b"LOAD")
        both(b"ACL", b"LIST")
        for text in ("user app on bogus\n", "nouser x\n", "user a b\nuser a\n",
                     "user x (~y\n", "user x +nosuch +@nosuch\n"):
            with open(path, "w") as handle:
                handle.write(text)
            both(b"ACL", b"LOAD")
        both(b"ACL", b"LIST")
        os.unlink(path)
        reply = ours.execute([b"ACL", b"LOAD"])
        self.assertIn("No such file or directory", reply.message)
        self.assertIn("user app on", saved)


class StartTests(SynchronousTestCase):
    """The aclfile is loaded when it is configured at start; errors stop the start."""

    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.path = os.path.join(self.directory, "users.acl")

    def test_loaded_at_start(self):
        """Users of the file exist once aclfile is configured; their sessions log in."""
        with open(self.path, "w") as handle:
            handle.write("user default on >pw ~* &* +@all\n\nuser app on nopass ~a* +get\n")
        store = Store(Clock())
        configure(store, [("aclfile", self.path)])
        session = store.new_session()
        self.assertEqual(session.execute([b"GET", b"x"]).message,
                         "NOAUTH Authentication required.")
        self.assertEqual(to_resp(session.execute([b"AUTH", b"app", b"any"])), b"+OK\r\n")
        self.assertEqual(session.execute([b"GET", b"ax"]), None)
        self.assertIn("NOPERM", session.execute([b"SET", b"ax", b"1"]).message)

    def test_broken_file_refused(self):
        """A broken file or a missing one makes configuring fail with Redis's reasons."""
        with open(self.path, "w") as handle:
            handle.write("user app on bogus\n")
        error = self.assertRaises(ConfigError, configure, Store(Clock()),
                                  [("aclfile", self.path)])
        self.assertIn("Syntax error", str(error))
        os.unlink(self.path)
        error = self.assertRaises(ConfigError, configure, Store(Clock()),
                                  [("aclfile", self.path)])
        self.assertIn("No such file or directory", str(error))

    def test_load_logs_out_other_users(self):
        """ACL LOAD closes the connections of non-default users; default ones stay."""
        with open(self.path, "w") as handle:
            handle.write("user app on nopass +@all ~*\n")
        store = Store(Clock())
        configure(store, [("aclfile", self.path)])
        app, default = store.new_session(), store.new_session()
        app.execute([b"AUTH", b"app", b"x"])
        self.assertIsNone(load_file(store, self.path))
        self.assertTrue(app.closing)
        self.assertFalse(default.closing)
        self.assertEqual(app.user.name, b"default")


class RelativeAndConfigUserTests(SynchronousTestCase):
    """A relative aclfile is under ``dir``; the config file's ``user`` directives."""

    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory, True)

    def test_relative_aclfile_is_under_dir(self):
        """``aclfile users.acl`` is read from and saved to ``dir``, as redis-server (which
        works in ``dir``) does; errors still name the configured path."""
        with open(os.path.join(self.directory, "users.acl"), "w") as handle:
            handle.write("user app on nopass ~a* +get\n")
        store = Store(Clock(), config={"dir": self.directory})
        configure(store, [("aclfile", "users.acl")])
        session = store.new_session()
        self.assertEqual(to_resp(session.execute([b"AUTH", b"app", b"x"])), b"+OK\r\n")
        self.assertEqual(to_resp(store.new_session().execute([b"ACL", b"SAVE"])),
                         b"+OK\r\n")
        os.unlink(os.path.join(self.directory, "users.acl"))
        reply = store.new_session().execute([b"ACL", b"LOAD"])
        self.assertIn("opening file 'users.acl'", reply.message)

    def test_config_users_and_rewrite(self):
        """``user`` lines create users at start (default reset first), a duplicate is
        refused with Redis's text, and CONFIG REWRITE writes every user's line."""
        from kvtwist.engine.acl_file import check_config_user, load_config_users

        store = Store(Clock())
        seen = set()
        rules = check_config_user(store, [b"default", b"on", b"nopass", b"~*", b"+@all",
                                          b"-flushdb"], seen)
        error = self.assertRaises(ValueError, check_config_user, store,
                                  [b"default", b"on"], seen)
        self.assertEqual(str(error), "Error in user declaration 'default': Duplicate user "
                         "found. A user can only be defined once in config files")
        load_config_users(store, [(b"default", rules)])
        session = store.new_session()
        self.assertIn("NOPERM", session.execute([b"FLUSHDB"]).message)
        path = os.path.join(self.directory, "kv.conf")
        with open(path, "w") as handle:
            handle.write("user default on nopass ~* +@all -flushdb\nhz 10\n")
        store.config_file = path
        self.assertEqual(to_resp(session.execute([b"CONFIG", b"REWRITE"])), b"+OK\r\n")
        with open(path) as handle:
            self.assertEqual(handle.read(),
                             "user default on nopass sanitize-payload ~* resetchannels "
                             "-@all +@all -flushdb\nhz 10\n".replace(" -@all +@all", " +@all"))
