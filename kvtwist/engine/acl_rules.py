"""ACL users and their rules, as Redis 7.0's acl.c: ACL SETUSER's modifiers and ACL LIST's
description of a user.

A User has flags (on/off, nopass, sanitize-payload), SHA-256 password digests (hex, as
Redis keeps them) and selectors: the root one (rules outside parentheses) and any number of
``(...)`` selectors; a command is allowed when one selector allows it. A Selector holds the
commands it allows (a set of full names, "get" or "config|get", standing for Redis's
bitmap), the reserved "future commands" bit that +@all sets, first-arg exceptions
(``+select|0``), key patterns with their READ/WRITE permissions and channel patterns.

``User.all_allowed`` is true when the root selector allows every command, key and channel:
the dispatch hot path tests only that attribute (see engine/acl.py).
"""

from __future__ import annotations

import hashlib
import hmac

from kvtwist.engine.acl_commands import ALL, CATEGORIES, READ, WRITE, category_of, universe
from kvtwist.engine.glob import compile_glob

# Redis's ACLSetUserStringError texts, by the errno acl.c sets.
UNKNOWN = "Unknown command or category name in ACL"
SYNTAX = "Syntax error"
KEYS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid "
                  "and does not have any effect. Try 'resetkeys' to start with an empty list "
                  "of patterns")
CHANNELS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is "
                      "not valid and does not have any effect. Try 'resetchannels' to start "
                      "with an empty list of channels")
NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
BAD_HASH = ("The password hash must be exactly 64 characters and contain only lowercase "
            "hexadecimal characters")
FIRSTARG_OF_SUB = "Allowing first-arg of a subcommand is not supported"

_HEX = frozenset(b"0123456789abcdef")
_SPACES = frozenset(b" \t\n\v\f\r\0")


class RuleError(Exception):
    """An ACL modifier refused; ``reason`` is Redis's text for it."""

    def __init__(self, reason: str) -> None:
        Exception.__init__(self, reason)
        self.reason = reason


def has_spaces(text: bytes) -> bool:
    """Return whether ``text`` holds a space or NUL (ACLStringHasSpaces)."""
    return any(byte in _SPACES for byte in text)


def hash_password(password: bytes) -> str:
    """Return the hex SHA-256 digest Redis keeps of a password."""
    return hashlib.sha256(password).hexdigest()


def _check_hash(text: bytes) -> str:
    if len(text) != 64 or any(byte not in _HEX for byte in text):
        raise RuleError(BAD_HASH)
    return text.decode("ascii")


class Selector:
    """Commands, keys and channels one selector allows."""

    def __init__(self, allchannels: bool) -> None:
        self.allowed = set()  # full command names
        self.future = False  # Redis's reserved bit: +@all allows commands added later
        self.allcommands = False
        self.firstargs = {}  # full name -> [lower-cased first args allowed]
        self.allkeys = False
        self.patterns = []  # [pattern bytes, READ|WRITE, compiled glob]
        self.allchannels = allchannels
        self.channels = []  # [pattern bytes, compiled glob]
        self.matchers = {}  # READ|WRITE need -> key matcher (acl_keys.key_matcher), built on use
        self.prefixes = {}  # need -> the prefixes tuple when they are all its patterns
        self.ranges = {}  # need -> acl_keys.key_range(self, need), on use

    def copy(self) -> "Selector":
        """Return an independent copy."""
        other = Selector(self.allchannels)
        other.allowed = set(self.allowed)
        other.future = self.future
        other.allcommands = self.allcommands
        other.firstargs = {name: list(args) for name, args in self.firstargs.items()}
        other.allkeys = self.allkeys
        other.patterns = [list(entry) for entry in self.patterns]
        other.channels = [list(entry) for entry in self.channels]
        return other

    # -- commands ---------------------------------------------------------------------

    def change(self, info, allow: bool) -> None:
        """ACLChangeSelectorPerm: allow or deny a command and all its subcommands."""
        self._bit(info.name, allow)
        self.firstargs.pop(info.name, None)
        for sub in info.subs:
            self._bit(sub.name, allow)

    def _bit(self, name: str, allow: bool) -> None:
        if allow:
            self.allowed.add(name)
        else:
            self.allowed.discard(name)
            self.allcommands = False

    def set_category(self, category: str, allow: bool) -> None:
        """Allow or deny every command in ``category`` (and every subcommand of those):
        O(commands)."""
        commands = universe()
        for info in commands.ordered:
            if category in info.categories:
                self.change(info, allow)

    def set_all(self, allow: bool) -> None:
        """+@all (every command, now and later) or -@all."""
        self.allowed = set(universe().all_names) if allow else set()
        self.future = self.allcommands = allow
        self.firstargs = {}

    # -- modifiers ----------------------------------------------------------------------

    def apply(self, op: bytes) -> None:
        """Apply one selector modifier (ACLSetSelector); raise RuleError if refused."""
        self.matchers = {}
        self.prefixes = {}
        self.ranges = {}
        lowered = op.lower()
        if lowered in (b"allkeys", b"~*"):
            self.allkeys = True
            self.patterns = []
        elif lowered == b"resetkeys":
            self.allkeys = False
            self.patterns = []
        elif lowered in (b"allchannels", b"&*"):
            self.allchannels = True
            self.channels = []
        elif lowered == b"resetchannels":
            self.allchannels = False
            self.channels = []
        elif lowered in (b"allcommands", b"+@all"):
            self.set_all(True)
        elif lowered in (b"nocommands", b"-@all"):
            self.set_all(False)
        elif op[:1] in (b"~", b"%"):
            self._add_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise RuleError(CHANNELS_AFTER_ALL)
            pattern = op[1:]
            if has_spaces(pattern):
                raise RuleError(SYNTAX)
            if all(entry[0] != pattern for entry in self.channels):
                self.channels.append([pattern, compile_glob(pattern)])
            self.allchannels = False
        elif op[:1] == b"+" and op[1:2] != b"@":
            self._allow_command(op[1:])
        elif op[:1] == b"-" and op[1:2] != b"@":
            info = universe().find(op[1:])
            if info is None:
                raise RuleError(UNKNOWN)
            self.change(info, False)
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            category = category_of(op[2:])
            if category is None:
                raise RuleError(UNKNOWN)
            self.set_category(category, op[:1] == b"+")
        else:
            raise RuleError(SYNTAX)

    def _add_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise RuleError(KEYS_AFTER_ALL)
        flags, offset = 0, 1
        if op[:1] == b"%":
            while offset < len(op):
                char = op[offset:offset + 1].upper()
                if char == b"R" and not flags & READ:
                    flags |= READ
                elif char == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif char == b"~":
                    offset += 1
                    break
                else:
                    raise RuleError(SYNTAX)
                offset += 1
        else:
            flags = ALL
        pattern = op[offset:]
        if has_spaces(pattern):
            raise RuleError(SYNTAX)
        for entry in self.patterns:
            if entry[0] == pattern:
                entry[1] |= flags
                break
        else:
            self.patterns.append([pattern, flags, compile_glob(pattern)])
        self.allkeys = False

    def _allow_command(self, name: bytes) -> None:
        commands = universe()
        if b"|" not in name:
            info = commands.find(name)
            if info is None:
                raise RuleError(UNKNOWN)
            self.change(info, True)
            return
        base, _, sub = name.rpartition(b"|")
        info = commands.find(base)
        if info is None:
            raise RuleError(UNKNOWN)
        if info.parent is not None:
            raise RuleError(FIRSTARG_OF_SUB)
        if not sub:
            raise RuleError(SYNTAX)
        if info.subs:
            subinfo = commands.find(name)
            if subinfo is None:
                raise RuleError(UNKNOWN)
            self.change(subinfo, True)
            return
        # SELECT|0-style first-arg exceptions (deprecated in Redis, still accepted).
        args = self.firstargs.setdefault(info.name, [])
        if sub.lower() not in [arg.lower() for arg in args]:
            args.append(sub)

    # -- description ----------------------------------------------------------------------

    def describe(self) -> str:
        """ACLDescribeSelector: key patterns, channel patterns, then command rules."""
        parts = []
        if self.allkeys:
            parts.append("~*")
        else:
            parts.extend(pattern_text(entry) for entry in self.patterns)
        if self.allchannels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts.extend("&" + _text(entry[0]) for entry in self.channels)
        parts.append(self.describe_commands())
        return " ".join(parts)

    def keys_text(self) -> str:
        """ACL GETUSER's ``keys`` field."""
        if self.allkeys:
            return "~*"
        return " ".join(pattern_text(entry) for entry in self.patterns)

    def channels_text(self) -> str:
        """ACL GETUSER's ``channels`` field."""
        if self.allchannels:
            return "&*"
        return " ".join("&" + _text(entry[0]) for entry in self.channels)

    def describe_commands(self) -> str:
        """ACLDescribeSelectorCommandRules: "+@all"/"-@all", the categories that best fit,
        then single commands. O(categories^2 x commands)."""
        commands = universe()
        fake = Selector(False)
        additive = not self.future
        fake.set_all(not additive)
        rules = ["-@all" if additive else "+@all"]
        temp = Selector(False)
        temp.allowed = set(self.allowed)
        applied = set()
        while True:
            best, mindiff, maxsame = None, None, 0
            for category in CATEGORIES:
                if category in applied:
                    continue
                members = commands.members[category]
                on = len(members & temp.allowed)
                off = len(members) - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (mindiff is None or diff < mindiff
                                    or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = category, diff, same
            if best is None:
                break
            fake.set_category(best, additive)
            temp.set_category(best, not additive)
            rules.append(("+@" if additive else "-@") + best)
            applied.add(best)
        for info in commands.ordered:
            mine = info.name in self.allowed
            if mine != (info.name in fake.allowed):
                rules.append(("+" if mine else "-") + info.name)
                fake.change(info, mine)
            if not mine:
                for arg in self.firstargs.get(info.name, ()):
                    rules.append("+%s|%s" % (info.name, _text(arg)))
        return " ".join(rules)


def pattern_text(entry) -> str:
    """Return a key pattern as ACL LIST writes it: ``~p``, ``%R~p`` or ``%W~p``."""
    prefix = {ALL: "~", READ: "%R~", WRITE: "%W~"}[entry[1]]
    return prefix + _text(entry[0])


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class User:
    """One ACL user: name, flags, password digests and selectors (the root one first)."""

    def __init__(self, name: bytes, allchannels: bool = False) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize = None  # None, "sanitize-payload" or "skip-sanitize-payload"
        self.passwords = []  # hex digests, in the order added
        self.selectors = [Selector(allchannels)]
        self.all_allowed = False
        self.plans = {}  # command name -> (key position, matcher): see acl_check.denied
        # Command -> (position, low, high): low <= argv[position] < high lets it through
        # without a call (Session.execute; see acl_check.denied). Emptied on every change.
        self.ranges = {}
        self._description = None

    @property
    def root(self) -> Selector:
        """The selector of the rules given outside parentheses."""
        return self.selectors[0]

    def copy(self, name=None) -> "User":
        """Return an independent copy (named ``name`` if given)."""
        other = User(self.name if name is None else name)
        other.copy_from(self)
        return other

    def copy_from(self, other: "User") -> None:
        """Take ``other``'s rules (ACLCopyUser): the name stays."""
        self.enabled = other.enabled
        self.nopass = other.nopass
        self.sanitize = other.sanitize
        self.passwords = list(other.passwords)
        self.selectors = [selector.copy() for selector in other.selectors]
        self.changed()

    def changed(self) -> None:
        """Recompute what is derived from the rules (call after every change)."""
        root = self.selectors[0]
        self.all_allowed = root.allcommands and root.allkeys and root.allchannels
        self.plans = {}
        self.ranges = {}
        self._description = None

    def check_password(self, password: bytes) -> bool:
        """Return whether ``password`` logs in as this (enabled) user, in constant time per
        stored digest: O(len(password) + passwords)."""
        if not self.enabled:
            return False
        if self.nopass:
            return True
        digest = hash_password(password)
        found = False
        for stored in self.passwords:
            found |= hmac.compare_digest(stored, digest)
        return found

    def apply(self, op: bytes, pubsub_default: bool = False) -> None:
        """Apply one ACL SETUSER modifier (ACLSetUser); raise RuleError if refused."""
        self._description = None
        try:
            self._apply(op, pubsub_default)
        finally:
            self.changed()

    def _apply(self, op: bytes, pubsub_default: bool) -> None:
        if not op:
            return
        lowered = op.lower()
        if lowered == b"on":
            self.enabled = True
        elif lowered == b"off":
            self.enabled = False
        elif lowered in (b"skip-sanitize-payload", b"sanitize-payload"):
            self.sanitize = lowered.decode()
        elif lowered == b"nopass":
            self.nopass = True
            self.passwords = []
        elif lowered == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            digest = hash_password(op[1:]) if op[:1] == b">" else _check_hash(op[1:])
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            digest = hash_password(op[1:]) if op[:1] == b"<" else _check_hash(op[1:])
            if digest not in self.passwords:
                raise RuleError(NO_SUCH_PASSWORD)
            self.passwords.remove(digest)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector(pubsub_default)
            for part in op[1:-1].split():
                selector.apply(part)
            self.selectors.append(selector)
        elif lowered == b"clearselectors":
            del self.selectors[1:]
        elif lowered == b"reset":
            self.nopass = False
            self.passwords = []
            root = self.root
            root.apply(b"resetkeys")
            root.apply(b"resetchannels")
            if pubsub_default:
                root.apply(b"allchannels")
            self.enabled = False
            self.sanitize = "sanitize-payload"
            del self.selectors[1:]
            root.apply(b"-@all")
        else:
            self.root.apply(op)

    def describe(self) -> str:
        """ACLDescribeUser: ACL LIST's text after the name (cached until the next change)."""
        if self._description is None:
            parts = ["on" if self.enabled else "off"]
            if self.nopass:
                parts.append("nopass")
            if self.sanitize is not None:
                parts.append(self.sanitize)
            parts.extend("#" + digest for digest in self.passwords)
            parts.append(self.root.describe())
            text = " ".join(parts)
            for selector in self.selectors[1:]:
                text += " (%s)" % (selector.describe(),)
            self._description = text
        return self._description

    def flags(self) -> list:
        """ACL GETUSER's flags, in Redis's order."""
        flags = ["on" if self.enabled else "off"]
        if self.nopass:
            flags.append("nopass")
        if self.sanitize is not None:
            flags.append(self.sanitize)
        return flags


def merge_selectors(ops: list):
    """ACLMergeSelectorArguments: join a ``(`` ... ``)`` selector given over several
    arguments into one. Return the merged list, or the opening argument when a selector
    is never closed (as an int index into ``ops``)."""
    merged, selector, start = [], None, -1
    for index, op in enumerate(ops):
        if op[:1] == b"(" and op[-1:] != b")":
            selector, start = op, index
            continue
        if start != -1:
            selector += b" " + op
            if op[-1:] == b")":
                start = -1
                merged.append(selector)
            continue
        merged.append(op)
    if start != -1:
        return start
    return merged


def default_user() -> User:
    """ACLCreateDefaultUser: on, nopass, every command, key and channel."""
    user = User(b"default")
    for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
        user.apply(op)
    return user
