"""Tests for kvtwist.engine.acl_keys: key matchers and key ranges of ACL selectors."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.acl_commands import READ, WRITE
from kvtwist.engine.acl_keys import key_matcher, key_range
from kvtwist.engine.acl_rules import User


def _user(*ops) -> User:
    user = User(b"u")
    for op in ops:
        user.apply(op)
    return user


class KeyRangeTests(SynchronousTestCase):
    """key_range: one literal or ``prefix*`` pattern as a byte range of keys."""

    def test_shapes(self):
        """A prefix gives [prefix, successor), a literal [literal, literal + NUL); anything
        else (globs, several patterns, an empty prefix, no successor) gives None."""
        cases = [((b"~key:*",), (b"key:", b"key;")), ((b"~a\xff\xff*",), (b"a\xff\xff", b"b")),
                 ((b"~lit",), (b"lit", b"lit\0")), ((b"~",), (b"", b"\0")),
                 ((b"~a?*",), None), ((b"~a**",), None), ((b"~a\\**",), None),
                 ((b"~a*", b"~b*"), None), ((b"%R~*",), None), ((b"~\xff*",), None),
                 ((b"~a[bc]",), None), ((), None)]
        for ops, expected in cases:
            self.assertEqual(key_range(_user(*ops).root, READ), expected, ops)

    def test_need(self):
        """Only the patterns granting the need count: %R~ and %W~ are resolved apart."""
        root = _user(b"%R~r:*", b"%W~w:*").root
        self.assertEqual(key_range(root, READ), (b"r:", b"r;"))
        self.assertEqual(key_range(root, WRITE), (b"w:", b"w;"))
        self.assertIsNone(key_range(root, READ | WRITE))

    def test_range_agrees_with_the_glob(self):
        """For every pattern with a range, a key lies in it exactly when the pattern's
        glob (Redis's stringmatchlen) matches the key."""
        from kvtwist.engine.glob import compile_glob

        keys = [b"", b"k", b"key", b"key:", b"key:1", b"key;", b"key:\xff", b"kez", b"a",
                b"a\xff", b"a\xff\xff", b"a\xff\xff\x00", b"b", b"lit", b"lit\0", b"lis",
                b"\xff", b"\xff\xff"]
        for pattern in (b"key:*", b"key*", b"k*", b"a\xff\xff*", b"a\xff*", b"lit", b"",
                        b"\xfe*"):
            bounds = key_range(_user(b"~" + pattern).root, READ | WRITE)
            self.assertIsNotNone(bounds, pattern)
            low, high = bounds
            glob = compile_glob(pattern)
            for key in keys:
                self.assertEqual(low <= key < high, glob.matches(key), (pattern, key))

    def test_range_dropped_on_change(self):
        """A range computed before a modifier is not kept after it."""
        user = _user(b"~a*")
        self.assertEqual(key_range(user.root, READ), (b"a", b"b"))
        user.apply(b"~b*")
        self.assertIsNone(key_range(user.root, READ))


class MatcherTests(SynchronousTestCase):
    """key_matcher: prefixes tested together, other globs one by one, per need."""

    def test_matcher(self):
        """Prefixes and globs granting the need match; the empty key never matches a
        prefix; patterns for another need do not count."""
        root = _user(b"~a:*", b"~b?", b"%W~w:*").root
        matches = key_matcher(root, READ)
        self.assertEqual([matches(key) for key in (b"a:1", b"bx", b"w:1", b"", b"c")],
                         [True, True, False, False, False])
        self.assertIsNone(root.prefixes[READ])
        other = _user(b"~a:*", b"%W~w:*").root
        self.assertTrue(key_matcher(other, WRITE)(b"w:1"))
        self.assertEqual(other.prefixes[WRITE], (b"a:", b"w:"))
