"""Tests for benchmarks.procs: the port policy for servers that must be told their port."""

from __future__ import annotations

import socket

from twisted.trial.unittest import SynchronousTestCase

from benchmarks import procs


class FreePortTests(SynchronousTestCase):
    """free_port draws a port no outgoing connection or bind to port 0 can take meanwhile."""

    def test_below_the_ephemeral_range(self) -> None:
        """Every port drawn lies below the kernel's ephemeral range, where connect() and
        bind(0) never pick, so another test's client cannot take it before the server binds."""
        first = procs.ephemeral_range()[0]
        for _ in range(50):
            self.assertTrue(first - 10000 <= procs.free_port() < first)

    def test_port_is_bindable(self) -> None:
        """The port drawn can be bound on 127.0.0.1 straight away."""
        port = procs.free_port()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))

    def test_skips_a_port_in_use(self) -> None:
        """A port some socket holds is never returned."""
        first = procs.ephemeral_range()[0]
        held = []
        try:
            for port in range(first - 10000, first - 9000):
                sock = socket.socket()
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    sock.close()
                    continue
                held.append(sock)
            ports = {sock.getsockname()[1] for sock in held}
            self.assertFalse(any(procs.free_port() in ports for _ in range(200)))
        finally:
            for sock in held:
                sock.close()

    def test_ports_drawn_are_distinct(self) -> None:
        """One process never draws a port twice among its last thousand draws, so a test
        that names many servers' ports before any of them binds gets distinct ones.

        Before, each draw was independent: a nutcracker test naming 24 pools' ports got
        two of them twice, and nutcracker refused the pool file (same listen address).
        """
        ports = [procs.free_port() for _ in range(500)]
        self.assertEqual(len(set(ports)), len(ports))

    def test_companion_port(self) -> None:
        """With a companion offset, the port that far above is free too, and both lie
        below the ephemeral range (a cluster node and its bus port)."""
        first = procs.ephemeral_range()[0]
        for _ in range(20):
            port = procs.free_port(10000)
            self.assertLess(port + 10000, first)
            for each in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", each))

    def test_ephemeral_range_is_the_kernels(self) -> None:
        """The range read is the kernel's setting: first below last, both real ports."""
        first, last = procs.ephemeral_range()
        self.assertTrue(1024 <= first < last <= 65535)
