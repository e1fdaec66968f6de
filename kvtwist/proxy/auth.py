"""kvproxy's passwords: its own (``--requirepass``) and its login to the backend.

kvproxy's clients share its backend connections, so their AUTH and HELLO are never
forwarded: kvproxy answers them itself, as Redis 7.0's default user does (the password kept
as a SHA-256 digest by ``engine.users.Auth``). With a password, a client gets
``NOAUTH Authentication required.`` for anything but AUTH, HELLO and QUIT until it logs in;
a failed login is counted (INFO's ``acl_access_denied_auth``) and starts a penalty of
``engine.users.PENALTY`` seconds on that client's connection alone, during which every
login fails unchecked, as kvstore does: a pipelined guesser gets one real guess per
penalty, and other clients are not held up.

kvproxy itself logs in to its backend with ``login_command``'s AUTH, sent first on every
connection it opens (see ``backend.Backend``'s ``login``).
"""

from __future__ import annotations

from kvtwist import __version__
from kvtwist.engine.table import parse_int
from kvtwist.engine.users import DEFAULT_USER, NOAUTH, PENALTY, WRONGPASS, Auth
from kvtwist.wire.replies import OK, CommandError, Error, Pairs

# What a client may send before it logs in (Redis's no_auth commands kvproxy answers;
# RESET it refuses anyway).
NO_AUTH = frozenset([b"AUTH", b"HELLO", b"QUIT", b"EXIT"])

NOAUTH_ERROR = Error(NOAUTH)
WRONGPASS_ERROR = Error(WRONGPASS)
NO_PASSWORD = Error("ERR AUTH <password> called without any password configured for the "
                    "default user. Are you sure your configuration is correct?")
HELLO_NOAUTH = Error("NOAUTH HELLO must be called with the client already authenticated, "
                     "otherwise the HELLO AUTH <user> <pass> option can be used to "
                     "authenticate the client and select the RESP protocol version at the "
                     "same time")
BAD_NAME = Error("ERR Client names cannot contain spaces, newlines or special characters.")


def login_command(user, password):
    """The AUTH kvproxy sends first on each backend connection (None: no password).

    ``AUTH password`` logs in as the default user (Redis 6+, and older servers' single
    password); ``AUTH user password`` as an ACL user.
    """
    if password is None:
        return None
    if user is None:
        return [b"AUTH", password]
    return [b"AUTH", user, password]


def proxy_auth(requirepass: bytes = b"") -> Auth:
    """Return the Auth of a kvproxy whose clients must log in with ``requirepass`` (empty:
    no password; ``#`` and 64 hex digits: its SHA-256 digest)."""
    auth = Auth()
    auth.set_password(requirepass)
    return auth


def valid_name(name: bytes) -> bool:
    """Whether Redis takes ``name`` as a client name: no spaces, newlines or controls
    (O(len(name)))."""
    return all(33 <= byte <= 126 for byte in name)


class Authenticating:
    """The login part of ``ProxySession``: AUTH, HELLO and the NOAUTH gate.

    ``authenticated`` is set by the session (True when kvproxy has no password);
    ``auth_penalty_until`` is when this connection's penalty ends (clock seconds).
    """

    authenticated = True
    auth_penalty_until = 0.0

    def _login(self, username: bytes, password: bytes) -> bool:
        """Try to log in; count and penalise a failure (O(len(password)))."""
        proxy = self.proxy
        auth = proxy.auth
        now = proxy.clock.seconds()
        if now >= self.auth_penalty_until and auth.check(username, password):
            self.authenticated = True
            return True
        auth.denied += 1
        self.auth_penalty_until = now + PENALTY
        return False

    def _auth(self, argv):
        if len(argv) < 2:
            return Error("ERR wrong number of arguments for 'auth' command")
        if len(argv) > 3:
            return Error("ERR syntax error")
        if len(argv) == 2:
            if not self.proxy.auth.required:
                return NO_PASSWORD
            username, password = DEFAULT_USER, argv[1]
        else:
            username, password = argv[1], argv[2]
        return OK if self._login(username, password) else WRONGPASS_ERROR

    def _hello(self, argv):
        # The backend link is always RESP2; the front end renders this client's replies
        # in whichever protocol it asked for, so RESP3 clients (redis-py 8) work too.
        protocol = self.protocol
        if len(argv) > 1:
            try:
                protocol = parse_int(argv[1])
            except CommandError:
                return Error("ERR Protocol version is not an integer or out of range")
            if protocol not in (2, 3):
                return Error("NOPROTO unsupported protocol version")
        login = name = None
        index = 2
        while index < len(argv):
            option = argv[index].upper()
            more = len(argv) - 1 - index
            if option == b"AUTH" and more >= 2:
                login = argv[index + 1], argv[index + 2]
                index += 3
            elif option == b"SETNAME" and more >= 1:
                name = argv[index + 1]
                index += 2
            else:
                return Error("ERR Syntax error in HELLO option '%s'"
                             % (argv[index].decode("utf-8", "replace"),))
        if login is not None and not self._login(*login):
            return WRONGPASS_ERROR
        if not self.authenticated:
            return HELLO_NOAUTH
        if name is not None:
            if not valid_name(name):
                return BAD_NAME
            self.name = name
        self.protocol = protocol
        return Pairs([(b"server", b"kvproxy"), (b"version", __version__.encode("ascii")),
                      (b"proto", protocol), (b"id", self.id), (b"mode", b"standalone"),
                      (b"role", b"master"), (b"modules", [])])
