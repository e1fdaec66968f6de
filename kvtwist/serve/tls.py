"""kvstore's TLS listeners with Redis's client authentication (``tls-auth-clients``).

An ``ssl:`` listen description (``ssl:PORT:privateKey=KEY:certKey=CERT``, with optional
``interface``, ``backlog`` and ``extraCertChain``) is served with a ``TLSContext``: the
server certificate of the description, and what ``tls-auth-clients`` asks of clients, as
Redis 7.0 does it:

- ``yes`` (the default): a client must present a certificate signed by a CA of
  ``tls-ca-cert-file``, else the handshake fails (OpenSSL's VERIFY_PEER and
  VERIFY_FAIL_IF_NO_PEER_CERT);
- ``optional``: a client may present none, but one it presents must be signed by such a
  CA (VERIFY_PEER);
- ``no``: no client certificate is asked for.

As in Redis, ``yes`` or ``optional`` without ``tls-ca-cert-file`` is a start-up error
(``Either tls-ca-cert-file or tls-ca-cert-dir must be specified ...``), and CONFIG SET of
either parameter applies to later connections (the OpenSSL context is rebuilt once per
change) or is refused with Redis's "Unable to update TLS configuration" when it cannot be
applied, leaving the old one in force.
"""

from __future__ import annotations

import re

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.logger import Logger

log = Logger(namespace="kvtwist.serve.tls")

NEEDS_CA = ("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, "
            "tls-replication or tls-auth-clients are enabled!")
UNABLE = "Unable to update TLS configuration. Check server logs."
_FIELDS = ("interface", "backlog", "privateKey", "certKey", "extraCertChain")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TLSError(Exception):
    """A TLS listener cannot be configured; the message says why."""


def split_description(description: str) -> dict:
    """Return the fields of an ``ssl:`` description: ``port`` and the named ones. Raise
    TLSError for a field kvstore's TLS listener does not take."""
    parts = [part.replace("\0", ":") for part in
             description.replace("\\:", "\0").split(":")[1:]]
    if not parts or not parts[0].isdigit():
        raise TLSError("%s: an ssl: endpoint needs a port" % (description,))
    fields = {"port": int(parts[0])}
    for part in parts[1:]:
        name, equals, value = part.partition("=")
        if not equals or name not in _FIELDS:
            raise TLSError("%s: kvstore's TLS listener takes %s, not '%s'"
                           % (description, ", ".join(_FIELDS), part))
        fields[name] = value
    if "privateKey" not in fields:
        raise TLSError("%s: an ssl: endpoint needs privateKey=" % (description,))
    return fields


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as e:
        raise TLSError("cannot read %s: %s" % (path, e.strerror))


def load_ca(path: str) -> list:
    """Return the certificates (OpenSSL X509) of a PEM file; raise TLSError if none."""
    found = [ssl.Certificate.loadPEM(block).original for block in _PEM.findall(_read(path))]
    if not found:
        raise TLSError("no certificate in %s" % (path,))
    return found


class TLSContext:
    """The OpenSSL context of a TLS listener, rebuilt when tls-auth-clients or
    tls-ca-cert-file change (Twisted asks for it at each new connection: O(1) then)."""

    def __init__(self, store, fields: dict) -> None:
        self.store = store
        key = _read(fields["privateKey"])
        cert = _read(fields.get("certKey") or fields["privateKey"])
        try:
            self.identity = ssl.PrivateCertificate.loadPEM(cert + b"\n" + key)
            self.chain = [ssl.Certificate.loadPEM(block).original for block in
                          _PEM.findall(_read(fields["extraCertChain"]))] \
                if fields.get("extraCertChain") else None
        except (SSL.Error, ValueError) as e:
            raise TLSError("bad certificate or key: %s" % (e,))
        self._built = None  # ((mode, ca file), OpenSSL context)
        self.context_for(self._wanted())  # fails now (at start) rather than on a client

    def _wanted(self, mode=None, ca=None):
        config = self.store.config
        return (mode or config.get("tls-auth-clients", "yes"),
                config.get("tls-ca-cert-file", "") if ca is None else ca)

    def context_for(self, wanted):
        """Return the OpenSSL context for (mode, CA file); raise TLSError if it cannot be
        made (Redis's start-up and CONFIG SET refusals)."""
        if self._built is not None and self._built[0] == wanted:
            return self._built[1]
        mode, ca = wanted
        options = {"privateKey": self.identity.privateKey.original,
                   "certificate": self.identity.original,
                   "extraCertChain": self.chain}
        if mode != "no":
            if not ca:
                raise TLSError(NEEDS_CA)
            options.update(verify=True, caCerts=load_ca(ca),
                           requireCertificate=(mode == "yes"))
        context = ssl.CertificateOptions(**options).getContext()
        self._built = (wanted, context)
        return context

    def getContext(self):
        """The context new connections use (Twisted's old-style context factory)."""
        return self.context_for(self._wanted())

    def check(self, mode=None, ca=None) -> None:
        """Refuse (ValueError, Redis's text) a change that cannot be applied; else make it
        the context of new connections."""
        try:
            self.context_for(self._wanted(mode, ca))
        except TLSError as e:
            log.warn("Failed to configure TLS: {reason}", reason=str(e))
            raise ValueError(UNABLE)


def tls_endpoint(reactor, description: str, store, backlog: int):
    """Return the server endpoint of an ``ssl:`` description with Redis's client
    authentication; raise TLSError when it cannot be configured."""
    from kvtwist.engine.config import watch

    fields = split_description(description)
    context = TLSContext(store, fields)
    watch(store, "tls-auth-clients", lambda mode: context.check(mode=mode))
    watch(store, "tls-ca-cert-file", lambda ca: context.check(ca=ca))
    return SSL4ServerEndpoint(reactor, fields["port"], context,
                              backlog=int(fields.get("backlog", backlog)),
                              interface=fields.get("interface", ""))
