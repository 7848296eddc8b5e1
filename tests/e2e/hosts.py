"""Test hosts: Linux network namespaces joined by a bridge (each one a machine of the consortium), a
Unix user per party node, and a packet capture on the bridge. Needs root (as on the dev and CI
machines); everything is removed again when the session ends."""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# RFC 2544's benchmarking range: not routed on the internet, so unlikely to be a machine's own network
# (a CI machine's address or route in 10.0.0.0/8 made an earlier choice unreachable).
CANDIDATE_SUBNETS = [f"198.{18 + i // 256}.{i % 256}.0/24" for i in range(8, 512)]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


@dataclass
class Network:
    """A bridge in the root namespace and one namespace per host, each with a veth on the bridge."""

    tag: str  # short and unique per session: it prefixes every namespace and interface name
    subnet: ipaddress.IPv4Network = field(default_factory=lambda: free_subnet())
    hosts: dict[str, str] = field(default_factory=dict)  # host name -> its IP address

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def create(self) -> Network:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet[1]}/{self.subnet.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        return self

    def add_host(self, host: str) -> str:
        index = len(self.hosts) + 2
        address = str(self.subnet[index])
        namespace, outside, inside = self.namespace(host), f"{self.tag}h{index}", f"{self.tag}n{index}"
        sh("ip", "netns", "add", namespace)
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", namespace)
        sh("ip", "link", "set", outside, "master", self.bridge)
        sh("ip", "link", "set", outside, "up")
        inns = ("ip", "netns", "exec", namespace)
        sh(*inns, "ip", "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inside)
        sh(*inns, "ip", "link", "set", inside, "up")
        sh(*inns, "ip", "link", "set", "lo", "up")
        self.hosts[host] = address
        return address

    def destroy(self) -> None:
        for host in self.hosts:
            sh("ip", "netns", "del", self.namespace(host), check=False)
        sh("ip", "link", "del", self.bridge, check=False)


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 that overlaps no address or route of this machine (nor another session's test network)."""
    taken = []
    for line in sh("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        words = line.split()[:2]  # "DEST ..." or "local|broadcast|... DEST ..."
        taken += [ipaddress.ip_network(w, strict=False) for w in words if w[:1].isdigit()][:1]
    for line in sh("ip", "-4", "-o", "addr").stdout.splitlines():
        taken.append(ipaddress.ip_interface(line.split()[3]).network)
    for candidate in map(ipaddress.ip_network, CANDIDATE_SUBNETS):
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise RuntimeError("no free /24 for the test network in 198.18.0.0/15")


@contextmanager
def traversable(*paths: Path) -> Iterator[None]:
    """Every folder above `paths` passable by other users for the block (then as before): node users
    run the interpreter and the source tree wherever they are (under /root, in a private clone)."""
    changed: dict[Path, int] = {}
    for path in paths:
        for folder in [path.resolve(), *path.resolve().parents]:
            mode = folder.stat().st_mode
            if folder not in changed and not mode & stat.S_IXOTH:
                changed[folder] = stat.S_IMODE(mode)
                folder.chmod(changed[folder] | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


def ensure_user(name: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, grp.getgrgid(entry.pw_gid).gr_gid


def own_privately(path: Path, user: str) -> None:
    """The folder and all in it belong to `user`; nobody else may even list it."""
    uid, gid = ensure_user(user)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(Path(root) / name, uid, gid)
    os.chown(path, uid, gid)
    path.chmod(0o700)


@dataclass
class HostProcess:
    """A long-running process on a test host, as a given user; stopped (whole group) at the end."""

    network: Network
    host: str
    command: list[str]
    environment: dict[str, str]
    log: Path
    user: str | None = None
    process: subprocess.Popen | None = None

    def start(self) -> HostProcess:
        prefix = ["ip", "netns", "exec", self.network.namespace(self.host)]
        if self.user:
            prefix += ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--clear-groups", "--"]
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [*prefix, *self.command],
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """The node process and everything it started (its own group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def run_on(
    network: Network,
    host: str,
    command: list[str],
    environment: dict[str, str],
    user: str | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", network.namespace(host)]
    if user:
        prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]
    return subprocess.run([*prefix, *command], env=environment, capture_output=True, text=True, timeout=timeout)


@dataclass
class Capture:
    """tcpdump on the bridge: the packets between the hosts that match `expression`, each cut to
    `snap` bytes (0: whole packets)."""

    interface: str
    path: Path
    expression: str = ""
    snap: int = 0
    process: subprocess.Popen | None = None

    def __enter__(self) -> Capture:
        self.process = subprocess.Popen(
            [
                "tcpdump",
                "-i",
                self.interface,
                "-w",
                str(self.path),
                "-U",
                "-s",
                str(self.snap),
                "-n",
                *self.expression.split(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not self.path.exists() and time.monotonic() < deadline:  # listening once the file exists
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        time.sleep(1)  # the last packets
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=15)

    def payload(self) -> bytes:
        return self.path.read_bytes()


def tools_present() -> list[str]:
    return [
        t for t in ("ip", "tcpdump", "setpriv", "useradd", "bwrap", "stunnel", "socat") if shutil.which(t) is None
    ]
