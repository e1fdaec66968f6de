"""A throwaway Redis Cluster on loopback for tests: three ``redis-server --cluster-enabled
yes`` primaries joined with ``redis-cli --cluster create``, stopped by their PIDs."""

from __future__ import annotations

import binascii
import os
import select
import shutil
import subprocess
import tempfile
from unittest import SkipTest

from tests.procs import ChildProcess, free_port
from tests.redisref import RawConnection, _wait_until_listening, find_redis_server


def key_slot(key: bytes) -> int:
    """Redis Cluster's slot of ``key`` (CRC16 of its hash tag or whole key, mod 16384)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) & 16383


def _pause(seconds: float) -> None:
    select.select([], [], [], seconds)


class ClusterNode(ChildProcess):
    """One cluster-enabled redis-server (``port``, ``pid``)."""

    def __init__(self, binary: str, workdir: str) -> None:
        for _ in range(5):
            self.port = port = free_port(10000)  # and its bus port, +10000
            self.process = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled",
                 "yes", "--cluster-config-file", os.path.join(workdir, "nodes-%d.conf" % port),
                 "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
                 "--dir", workdir, "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.pid = self.process.pid
            if _wait_until_listening(port, self.process, ping=True):
                return
            self.stop()
        raise RuntimeError("a cluster node did not start")

    def call(self, *argv) -> bytes:
        """Send one command to this node; the reply's raw bytes."""
        conn = RawConnection(self.port)
        try:
            return conn.call([arg if isinstance(arg, bytes) else str(arg).encode()
                              for arg in argv])
        finally:
            conn.close()

    @property
    def node_id(self) -> str:
        reply = self.call("CLUSTER", "MYID")
        return reply.split(b"\r\n")[1].decode()


class RedisCluster:
    """Three primaries (``nodes``) covering the 16384 slots; ``stop()`` ends them."""

    def __init__(self, count: int = 3) -> None:
        binary = find_redis_server()
        cli = shutil.which("redis-cli")
        if binary is None or cli is None:
            raise SkipTest("redis-server or redis-cli is not installed")
        self.cli = cli
        self.workdir = tempfile.mkdtemp(prefix="kvtwist-cluster-")
        self.nodes = []
        try:
            for _ in range(count):
                self.nodes.append(ClusterNode(binary, self.workdir))
            done = subprocess.run(
                [cli, "--cluster", "create"] + [self.address(node) for node in self.nodes]
                + ["--cluster-replicas", "0", "--cluster-yes"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            if done.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed:\n%s"
                                   % (done.stdout.decode("utf-8", "replace"),))
            self.wait_ok()
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def address(node) -> str:
        return "127.0.0.1:%d" % (node.port,)

    def wait_ok(self, attempts: int = 600) -> None:
        """Wait until every node says cluster_state:ok and agrees on the slots (~30 s)."""
        for _ in range(attempts):
            if all(self._settled(node) for node in self.nodes):
                return
            _pause(0.05)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def _settled(self, node) -> bool:
        info = node.call("CLUSTER", "INFO")
        return (b"cluster_state:ok" in info and b"cluster_slots_assigned:16384" in info
                and b"cluster_known_nodes:%d" % (len(self.nodes),) in info)

    def owner(self, slot: int):
        """The node that says it serves ``slot`` (its CLUSTER NODES view, asked of each)."""
        for node in self.nodes:
            reply = node.call("CLUSTER", "COUNTKEYSINSLOT", slot)  # any node answers
            del reply
            text = node.call("CLUSTER", "NODES").decode()
            for line in text.splitlines():
                fields = line.split()
                if len(fields) < 8 or "myself" not in fields[2]:
                    continue
                for part in fields[8:]:
                    if part.startswith("["):
                        continue
                    low, _, high = part.partition("-")
                    if int(low) <= slot <= int(high or low):
                        return node
        return None

    def node_of(self, key: bytes):
        """The node serving ``key``'s slot."""
        return self.owner(key_slot(key))

    def reshard(self, source, target, slots: int) -> str:
        """Move ``slots`` slots from ``source`` to ``target`` with ``redis-cli --cluster
        reshard``; its output."""
        done = subprocess.run(self.reshard_command(source, target, slots),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        output = done.stdout.decode("utf-8", "replace")
        if done.returncode != 0:
            raise RuntimeError("redis-cli --cluster reshard failed:\n%s" % (output,))
        return output

    def reshard_command(self, source, target, slots: int, pipeline: int = 10) -> list:
        """The argv of ``redis-cli --cluster reshard`` moving ``slots`` slots (the lowest
        of ``source``'s), ``pipeline`` keys per MIGRATE."""
        return [self.cli, "--cluster", "reshard", self.address(source), "--cluster-from",
                source.node_id, "--cluster-to", target.node_id, "--cluster-slots",
                str(slots), "--cluster-pipeline", str(pipeline), "--cluster-yes"]

    def stop(self) -> None:
        """Stop every node by its PID and remove the working directory."""
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
