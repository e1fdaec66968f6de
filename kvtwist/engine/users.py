"""Users and logging in, as Redis 7.0: the ACL users, ``requirepass`` and the NOAUTH gate.

The AUTH and HELLO commands (engine/server.py) log sessions in through ``authenticate``;
ACL SETUSER and friends (engine/acl.py) edit the users kept here.

Every connection starts as the ``default`` user, authenticated at once when that user is
``nopass`` and enabled (Redis's default, and ``requirepass`` empty). Otherwise a connection
must AUTH (or HELLO ... AUTH) before any command but AUTH, HELLO, QUIT and RESET, which get
``NOAUTH Authentication required.``. ``requirepass`` is the default user's password, as in
Redis (setting it resets that user's passwords). Passwords are kept only as SHA-256 digests
and compared in constant time. A failed attempt is counted (INFO stats
``acl_access_denied_auth``) and logged in the ACL LOG. After ``FREE_FAILURES`` failures
in a row a connection enters a penalty of ``PENALTY`` seconds during which every AUTH fails
without being checked: a pipelined guesser gets ``FREE_FAILURES`` real guesses per
penalty, other connections are not held up, and a client (or Redis's test suite) that
retries after a mistake or two is not slowed at all. A success ends the run of failures.
"""

from __future__ import annotations

import hashlib

from kvtwist.engine.acl_log import AUTH, log_for, record
from kvtwist.engine.acl_rules import default_user
from kvtwist.engine.table import define_config

DEFAULT_USER = b"default"
PENALTY = 0.5  # seconds during which a connection's AUTH attempts fail unchecked
FREE_FAILURES = 3  # failures in a row before the penalty starts
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOAUTH = "NOAUTH Authentication required."


class Auth:
    """A store's ACL users (``users`` by name, ``default``) and failed-login count."""

    def __init__(self) -> None:
        self.default = default_user()
        self.users = {DEFAULT_USER: self.default}
        self.pubsub_default = False  # acl-pubsub-default: allchannels (True) or not

    @property
    def required(self) -> bool:
        """Return whether connections must authenticate (Redis's authRequired)."""
        default = self.default
        return not default.nopass or not default.enabled

    @property
    def denied(self) -> int:
        """Failed logins so far (INFO's acl_access_denied_auth): the store's ACL LOG counts
        them; an Auth without one (kvproxy's) counts its own."""
        return self._log.denied[AUTH] if self._log is not None else self._denied

    @denied.setter
    def denied(self, value: int) -> None:
        if self._log is not None:
            self._log.denied[AUTH] = value
        else:
            self._denied = value

    _log = None
    _denied = 0

    def set_password(self, password: bytes) -> None:
        """Make ``password`` the default user's only one (empty: nopass), as requirepass does.

        ``#`` and 64 hex digits give the SHA-256 digest itself (as ACL rules do), which is
        what CONFIG GET and CONFIG REWRITE show, so the password never appears.
        """
        default = self.default
        default.apply(b"resetpass")
        digest = _digest_form(password)
        if digest is not None:
            default.apply(b"#" + digest.hex().encode())
        elif password:
            default.apply(b">" + password)
        else:
            default.apply(b"nopass")

    def check(self, username: bytes, password: bytes):
        """Return the user ``username``/``password`` log in as, or None:
        O(len(password) + the user's passwords)."""
        user = self.users.get(username)
        if user is None or not user.check_password(password):
            return None
        return user


def auth_for(store) -> Auth:
    """Return the store's Auth, made on first use."""
    auth = getattr(store, "auth", None)
    if auth is None:
        auth = store.auth = Auth()
        auth._log = log_for(store)
    return auth


def authenticate(session, username: bytes, password: bytes) -> bool:
    """Try to log ``session`` in as ``username``; count, log and penalise a failure.
    Return whether it worked."""
    auth = auth_for(session.store)
    now = session.store.clock.seconds()
    user = None
    if now >= session.auth_penalty_until:
        user = auth.check(username, password)
    if user is not None:
        session.authenticated = True
        session.user = user
        if getattr(session, "auth_failures", 0):
            # Set only when there were failures: an attribute the session was made without
            # gives it a dict of its own on CPython, which slows all its attribute reads.
            session.auth_failures = 0
        return True
    failures = session.auth_failures = getattr(session, "auth_failures", 0) + 1
    if failures >= FREE_FAILURES:
        session.auth_penalty_until = now + PENALTY
    command = session.last_argv[0] if session.last_argv else b"auth"
    record(session, AUTH, command, username)
    return False


def _digest_form(password: bytes):
    # "#" + 64 hex digits: a SHA-256 digest given as such; anything else is a password.
    if len(password) == 65 and password[:1] == b"#":
        try:
            return bytes.fromhex(password[1:].decode("ascii"))
        except ValueError:
            return None
    return None


def _set_requirepass(store, value: str) -> None:
    auth_for(store).set_password(value.encode("utf-8", "surrogateescape"))


def _show_requirepass(value: str) -> str:
    # CONFIG GET and REWRITE show the digest, never the password.
    password = value.encode("utf-8", "surrogateescape")
    if not password or _digest_form(password) is not None:
        return value
    return "#" + hashlib.sha256(password).hexdigest()


define_config("requirepass", "", str, _set_requirepass, show=_show_requirepass)
