"""Hosts on one machine for integration tests: Linux network namespaces on a private bridge,
a throwaway PostgreSQL cluster and a Neo4j instance listening on the bridge's address.

Each :class:`Host` is a network namespace (``ip netns add``) joined to a bridge in the root
namespace by a veth pair. The subnet is ``10.231.<n>.0/24`` (``n`` the first free index):
the bridge holds ``.1``, the hosts ``.10``, ``.11``, ... The namespaces have no default
route, so their traffic reaches only each other and the root namespace; loopback inside a
namespace is its own, so a process there reaches PostgreSQL and Neo4j only over TCP on the
bridge. Needs root (``ip netns``, ``runuser``); :func:`require_root` skips the test
otherwise, and fails it under ``CI``.

Everything is removed on :meth:`Network.close` (namespaces, veths, the bridge). A network
left behind by a killed test run is removed by the next one: the owner's pid is kept in
``/run/kos-netns/<n>.pid`` and a bridge whose owner is gone is taken over and cleaned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["Host", "Neo4jServer", "Network", "PostgresCluster", "require_root"]

logger = logging.getLogger(__name__)

SUBNET_PREFIX = "10.231"
"""First two octets of the test subnets (RFC 1918 space, only on this machine)."""
MAX_NETWORKS = 32
STATE_DIR = Path("/run/kos-netns")
REPO = Path(__file__).resolve().parents[2]


def require_root() -> None:
    """Skip the test when not root (``ip netns`` needs it); fail instead under ``CI``."""
    if os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("runuser") is not None:
        return
    message = "network-namespace hosts need root, ip (iproute2) and runuser (util-linux)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class Host:
    """One network namespace with one address on the test bridge.

    Attributes:
        name: Short name given by the test (``a``, ``client``).
        netns: The namespace's name (``ip netns exec <netns> ...``).
        address: Its IPv4 address on the bridge.
    """

    name: str
    netns: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed to run inside this namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this namespace to completion (text output captured)."""
        done = subprocess.run(self.command(argv), env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=REPO)
        if check and done.returncode != 0:
            raise AssertionError(f"{argv[:4]} on host {self.name} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return done

    def popen(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
              log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` in this namespace; stdout and stderr go to ``log`` (or nowhere).

        ``ip netns exec`` execs the command, so the returned pid is the command's own
        (a SIGKILL reaches it, not a wrapper).
        """
        out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
        try:
            return subprocess.Popen(self.command(argv), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]


@dataclass
class Network:
    """A bridge in the root namespace and the hosts on it. Use as a context manager.

    Attributes:
        index: ``n`` of the subnet ``10.231.<n>.0/24``.
        gateway: The bridge's address (``10.231.<n>.1``), where servers for the hosts listen.
        hosts: Hosts by name, in creation order.
    """

    index: int
    gateway: str
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"kosnb{self.index}"

    @classmethod
    def create(cls, names: Sequence[str]) -> Network:
        """A new network with one host per name (at most 200).

        Raises:
            RuntimeError: all :data:`MAX_NETWORKS` subnets are held by live processes.
        """
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        for index in range(MAX_NETWORKS):
            net = cls(index=index, gateway=f"{SUBNET_PREFIX}.{index}.1")
            owner = STATE_DIR / f"{index}.pid"
            try:
                fd = os.open(owner, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(owner.read_text() or "0")
                except (OSError, ValueError):
                    pid = 0
                if pid and _pid_alive(pid):
                    continue
                logger.warning("removing network %d left by pid %d", index, pid)
                net._teardown(names_hint=True)
                owner.unlink(missing_ok=True)
                try:
                    fd = os.open(owner, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            if _link_exists(net.bridge):  # left without a pid file
                net._teardown(names_hint=True)
            try:
                net._setup(names)
            except BaseException:
                net.close()
                raise
            return net
        raise RuntimeError(f"no free test subnet among {SUBNET_PREFIX}.0..{MAX_NETWORKS - 1}.0/24")

    def _setup(self, names: Sequence[str]) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for k, name in enumerate(names):
            netns = f"kosn{self.index}-{name}"
            outer, inner = f"kosv{self.index}h{k}", f"kosv{self.index}n{k}"
            address = f"{SUBNET_PREFIX}.{self.index}.{10 + k}"
            _ip("netns", "add", netns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", netns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("-n", netns, "addr", "add", f"{address}/24", "dev", inner)
            _ip("-n", netns, "link", "set", inner, "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            self.hosts[name] = Host(name=name, netns=netns, address=address)

    def _teardown(self, *, names_hint: bool = False) -> None:
        prefix = f"kosn{self.index}-"
        listed = _ip("netns", "list", check=False).stdout.split("\n")
        for line in listed:
            netns = line.split(" ")[0]
            if netns.startswith(prefix):
                _ip("netns", "del", netns, check=False)
        for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
            # "7: kosv0h0@if6: <...>": a veth left in the root namespace
            parts = line.split(":")
            name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
            if name.startswith(f"kosv{self.index}h"):
                _ip("link", "del", name, check=False)
        if _link_exists(self.bridge):
            _ip("link", "del", self.bridge, check=False)

    def close(self) -> None:
        """Remove the namespaces (their veths go with them), the bridge and the pid file."""
        self._teardown()
        self.hosts.clear()
        owner = STATE_DIR / f"{self.index}.pid"
        with contextlib.suppress(OSError, ValueError):
            if int(owner.read_text() or "0") == os.getpid():
                owner.unlink()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_port(host: str, port: int, *, timeout_s: float = 60.0) -> None:
    """Return once ``host:port`` accepts a TCP connection.

    Raises:
        TimeoutError: it did not within ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s") from None
            time.sleep(0.2)


def _pg_bindir() -> Path:
    """Debian's newest PostgreSQL server binaries (``/usr/lib/postgresql/<version>/bin``)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin/postgres")), key=lambda p: [int(x) for x in
                      p.parts[-3].split(".") if x.isdigit()]) if root.is_dir() else []
    if not versions:
        message = "PostgreSQL server binaries not found under /usr/lib/postgresql (Debian's postgresql package)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return versions[-1].parent


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``, run as the ``postgres``
    user) listening on one address only, trust auth for one subnet. Not the shared cluster
    of ``scripts/services/postgres.sh``: tests may stop and restart this one.

    Attributes:
        address: The one ``listen_addresses`` entry (the bridge's address).
        port: TCP port.
        subnet: CIDR allowed in ``pg_hba.conf`` (trust: tests only).
        datadir: The cluster's folder (a fresh temporary folder owned by ``postgres``).
    """

    address: str
    port: int
    subnet: str
    datadir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kos-netns-pg-")))

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.address}:{self.port}/{database}"

    def _as_postgres(self, *argv: str, timeout: float = 120) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} {argv[1]} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout)[-2000:]}")

    def init(self) -> PostgresCluster:
        """``initdb`` the folder, write its configuration and start it."""
        shutil.chown(self.datadir, "postgres", "postgres")
        self.datadir.chmod(0o700)
        bindir = _pg_bindir()
        self._as_postgres(str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
                          "-E", "UTF8", "--no-sync")
        (self.datadir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all all {self.subnet} trust\n")
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '{self.address}'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.datadir}'\nfsync = off\nmax_connections = 100\n"
                       "shared_buffers = 32MB\n")
        self.start()
        return self

    def start(self) -> None:
        """Start the cluster and wait until it accepts TCP connections."""
        self._as_postgres(str(_pg_bindir() / "pg_ctl"), "start", "-D", str(self.datadir), "-w", "-t", "60",
                          "-l", str(self.datadir / "server.log"))
        wait_for_port(self.address, self.port)

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``pg_ctl stop -m fast``: open connections are terminated)."""
        self._as_postgres(str(_pg_bindir() / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", mode, "-w")

    def running(self) -> bool:
        return subprocess.run(["runuser", "-u", "postgres", "--", str(_pg_bindir() / "pg_ctl"), "status", "-D",
                               str(self.datadir)], capture_output=True, timeout=30).returncode == 0

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its DSN."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def destroy(self) -> None:
        """Stop the cluster (if running) and delete its folder."""
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)


@dataclass
class Neo4jServer:
    """A Neo4j of its own for the test, started by ``scripts/services/neo4j.sh`` with Bolt
    bound to ``address`` (``KOS_NEO4J_HOST``), its data in a temporary folder; ~20 s to start.

    Attributes:
        address, port: Where Bolt listens.
        datadir: Its ``KOS_NEO4J_DATA`` folder (deleted by :meth:`destroy`).
    """

    address: str
    port: int
    datadir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kos-netns-neo4j-")))

    @property
    def uri(self) -> str:
        return f"bolt://{self.address}:{self.port}"

    def _script(self, action: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KOS_NEO4J_HOST": self.address, "KOS_NEO4J_PORT": str(self.port),
               "KOS_NEO4J_DATA": str(self.datadir), "KOS_NEO4J_HEAP": os.environ.get("KOS_NEO4J_HEAP", "512m")}
        return subprocess.run(["bash", str(REPO / "scripts" / "services" / "neo4j.sh"), action], env=env,
                              capture_output=True, text=True, timeout=300)

    def start(self) -> Neo4jServer:
        """Start it and wait for Bolt.

        Raises:
            RuntimeError: the script failed (its stderr in the message).
        """
        done = self._script("start")
        if done.returncode != 0:
            raise RuntimeError(f"neo4j.sh start on {self.address}:{self.port} failed: {done.stderr[-3000:]}")
        wait_for_port(self.address, self.port)
        return self

    def destroy(self) -> None:
        """Stop it and delete its data."""
        self._script("destroy")
        shutil.rmtree(self.datadir, ignore_errors=True)


@contextlib.contextmanager
def hosts(names: Sequence[str]) -> Iterator[Network]:
    """:meth:`Network.create` as a context manager (always cleaned up)."""
    net = Network.create(names)
    try:
        yield net
    finally:
        net.close()
