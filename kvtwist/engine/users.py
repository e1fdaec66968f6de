"""Users and passwords, as Redis 7.0's default user: requirepass and the NOAUTH gate.

The AUTH and HELLO commands (engine/server.py) log sessions in through ``authenticate``.

With ``requirepass`` empty (the default) the default user needs no password and every
connection starts authenticated, as in Redis. With a password, a connection must AUTH (or
HELLO ... AUTH) before any command but AUTH, HELLO, QUIT and RESET, which get
``NOAUTH Authentication required.``. Only a SHA-256 digest of the password is kept, and it
is compared in constant time. A failed attempt is counted (INFO stats
``acl_access_denied_auth``) and starts a penalty of ``PENALTY`` seconds for its connection
during which every AUTH fails without being checked: a pipelined guesser gets one real
guess per penalty, and other connections are not held up at all.
"""

from __future__ import annotations

import hashlib
import hmac

from kvtwist.engine.table import define_config

DEFAULT_USER = b"default"
PENALTY = 0.5  # seconds during which a connection's AUTH attempts fail unchecked
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOAUTH = "NOAUTH Authentication required."


class Auth:
    """A store's password (as a digest) and its failed-authentication count."""

    def __init__(self) -> None:
        self.digest = None  # None: the default user has no password (nopass)
        self.denied = 0

    @property
    def required(self) -> bool:
        """Return whether new connections must authenticate."""
        return self.digest is not None

    def set_password(self, password: bytes) -> None:
        """Require ``password`` from now on (empty: no password); keeps only its digest.

        ``#`` and 64 hex digits give the SHA-256 digest itself (as ACL rules do), which is
        what CONFIG GET and CONFIG REWRITE show, so the password never appears.
        """
        digest = _digest_form(password)
        if digest is not None:
            self.digest = digest
        else:
            self.digest = hashlib.sha256(password).digest() if password else None

    def check(self, username: bytes, password: bytes) -> bool:
        """Return whether ``username``/``password`` name the default user: O(len(password))."""
        if username != DEFAULT_USER:
            return False
        if self.digest is None:
            return True  # nopass: any password is accepted, as Redis's nopass user does
        return hmac.compare_digest(hashlib.sha256(password).digest(), self.digest)


def auth_for(store) -> Auth:
    """Return the store's Auth, made on first use."""
    auth = getattr(store, "auth", None)
    if auth is None:
        auth = store.auth = Auth()
    return auth


def authenticate(session, username: bytes, password: bytes) -> bool:
    """Try to log ``session`` in; count and penalise a failure. Return whether it worked."""
    auth = auth_for(session.store)
    now = session.store.clock.seconds()
    if now >= session.auth_penalty_until and auth.check(username, password):
        session.authenticated = True
        return True
    auth.denied += 1
    session.auth_penalty_until = now + PENALTY
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
