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


class KeyRangeTests(SynchronousTestCase):
    """Selector.key_range: one literal or ``prefix*`` pattern as a byte range of keys."""

    def test_shapes(self):
        """A prefix gives [prefix, successor), a literal [literal, literal + NUL); anything
        else (globs, several patterns, an empty prefix, no successor) gives None."""
        cases = [((b"~key:*",), (b"key:", b"key;")), ((b"~a\xff\xff*",), (b"a\xff\xff", b"b")),
                 ((b"~lit",), (b"lit", b"lit\0")), ((b"~",), (b"", b"\0")),
                 ((b"~a?*",), None), ((b"~a**",), None), ((b"~a\\**",), None),
                 ((b"~a*", b"~b*"), None), ((b"%R~*",), None), ((b"~\xff*",), None),
                 ((b"~a[bc]",), None), ((), None)]
        for ops, expected in cases:
            self.assertEqual(_user(*ops).root.key_range(READ), expected, ops)

    def test_need(self):
        """Only the patterns granting the need count: %R~ and %W~ are resolved apart."""
        root = _user(b"%R~r:*", b"%W~w:*").root
        self.assertEqual(root.key_range(READ), (b"r:", b"r;"))
        self.assertEqual(root.key_range(WRITE), (b"w:", b"w;"))
        self.assertIsNone(root.key_range(READ | WRITE))

    def test_range_agrees_with_the_glob(self):
        """For every pattern with a range, a key lies in it exactly when the pattern's
        glob (Redis's stringmatchlen) matches the key."""
        from kvtwist.engine.glob import compile_glob

        keys = [b"", b"k", b"key", b"key:", b"key:1", b"key;", b"key:\xff", b"kez", b"a",
                b"a\xff", b"a\xff\xff", b"a\xff\xff\x00", b"b", b"lit", b"lit\0", b"lis",
                b"\xff", b"\xff\xff"]
        for pattern in (b"key:*", b"key*", b"k*", b"a\xff\xff*", b"a\xff*", b"lit", b"",
                        b"\xfe*"):
            bounds = _user(b"~" + pattern).root.key_range(READ | WRITE)
            self.assertIsNotNone(bounds, pattern)
            low, high = bounds
            glob = compile_glob(pattern)
            for key in keys:
                self.assertEqual(low <= key < high, glob.matches(key), (pattern, key))

    def test_range_dropped_on_change(self):
        """A range computed before a modifier is not kept after it."""
        user = _user(b"~a*")
        self.assertEqual(user.root.key_range(READ), (b"a", b"b"))
        user.apply(b"~b*")
        self.assertIsNone(user.root.key_range(READ))
