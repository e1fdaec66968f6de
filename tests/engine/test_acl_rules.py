"""Tests for kvtwist.engine.acl_rules: users, selectors, modifiers and descriptions."""

from __future__ import annotations

import hashlib

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.acl_commands import READ, WRITE, universe
from kvtwist.engine.acl_rules import (
    BAD_HASH, KEYS_AFTER_ALL, SYNTAX, UNKNOWN, RuleError, User, default_user, merge_selectors)


def _user(*ops) -> User:
    user = User(b"u")
    for op in ops:
        user.apply(op)
    return user


class UserTests(SynchronousTestCase):
    """Modifiers change a user as Redis's ACLSetUser does."""

    def test_default_user_allows_everything(self):
        """The default user is on, nopass, and flagged as allowed everything."""
        user = default_user()
        self.assertTrue(user.all_allowed)
        self.assertEqual(user.describe(), "on nopass ~* &* +@all")
        self.assertTrue(user.check_password(b"anything"))

    def test_all_allowed_flag(self):
        """Removing any command, key or channel clears all_allowed; +@all alone restores
        only the commands."""
        user = default_user()
        user.apply(b"-get")
        self.assertFalse(user.all_allowed)
        user.apply(b"+get")
        self.assertFalse(user.all_allowed)  # the allcommands flag is not restored by +get
        user.apply(b"allcommands")
        self.assertTrue(user.all_allowed)
        user.apply(b"resetchannels")
        self.assertFalse(user.all_allowed)

    def test_passwords_kept_hashed(self):
        """Passwords are SHA-256 hex digests; < and ! remove them; off refuses logins."""
        user = _user(b"on", b">pw", b"#" + hashlib.sha256(b"other").hexdigest().encode())
        self.assertEqual(user.passwords, [hashlib.sha256(b"pw").hexdigest(),
                                          hashlib.sha256(b"other").hexdigest()])
        self.assertNotIn("pw ", user.describe())
        self.assertTrue(user.check_password(b"other"))
        user.apply(b"<other")
        self.assertFalse(user.check_password(b"other"))
        self.assertTrue(user.check_password(b"pw"))
        user.apply(b"off")
        self.assertFalse(user.check_password(b"pw"))

    def test_errors(self):
        """Refused modifiers raise RuleError with Redis's reasons."""
        for ops, reason in (([b"#abc"], BAD_HASH), ([b"+nosuch"], UNKNOWN),
                            ([b"allkeys", b"~x"], KEYS_AFTER_ALL), ([b"%Q~x"], SYNTAX),
                            ([b"what"], SYNTAX)):
            error = self.assertRaises(RuleError, _user, *ops)
            self.assertEqual(error.reason, reason)

    def test_key_patterns_merge_flags(self):
        """The same pattern given as %R~ then %W~ becomes ~ (read and write)."""
        user = _user(b"%R~k*", b"%W~k*", b"%W~w*")
        self.assertEqual([(entry[0], entry[1]) for entry in user.root.patterns],
                         [(b"k*", READ | WRITE), (b"w*", WRITE)])
        self.assertEqual(user.root.keys_text(), "~k* %W~w*")

    def test_container_rules(self):
        """Allowing a container allows its subcommands; -cmd|sub takes one away."""
        user = _user(b"+config", b"-config|set")
        self.assertIn("config|get", user.root.allowed)
        self.assertNotIn("config|set", user.root.allowed)
        self.assertEqual(user.root.describe_commands(), "-@all +config -config|set")

    def test_category_description(self):
        """A whole category is described as +@category."""
        user = _user(b"+@read")
        self.assertEqual(user.root.describe_commands(), "-@all +@read")
        self.assertEqual(user.root.allowed, set(universe().members["read"]))

    def test_copy_is_independent(self):
        """A copy shares nothing with its original."""
        user = _user(b"~a", b"+get", b"(+set)")
        other = user.copy()
        other.apply(b"resetkeys")
        other.apply(b"-get")
        other.apply(b"clearselectors")
        self.assertEqual(len(user.selectors), 2)
        self.assertIn("get", user.root.allowed)
        self.assertEqual(user.root.patterns[0][0], b"a")

    def test_merge_selectors(self):
        """Selectors split over arguments are joined; an unclosed one gives its index."""
        self.assertEqual(merge_selectors([b"on", b"(+get", b"~a)", b"off"]),
                         [b"on", b"(+get ~a)", b"off"])
        self.assertEqual(merge_selectors([b"on", b"(+get", b"~a"]), 1)

