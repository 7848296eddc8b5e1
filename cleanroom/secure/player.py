"""Entry point of one secure-computation player, run inside its node's sandbox:
`python -m cleanroom.secure.player NAME --cluster JSON --sockets DIR`.

Its working directory holds the run's input files only, so the relative input paths in a graph
resolve to them. It bridges the loopback addresses of the other players to the node's TLS terminator
(see `cleanroom.network.topology`) and refuses to serve without secure randomness unless allowed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

from cleanroom.network.topology import COORDINATOR, IN_SOCKET, bridge_commands
from cleanroom.processes import port_listening
from cleanroom.secure.runtime import import_tfe, secure_randomness_available

SERVING = "serving"
PLAYER_JOB = "tfe"  # TF Encrypted's job name for players
PLAYER_NICENESS = 5
NO_SECURE_RANDOMNESS = 4


def start_bridges(
    sockets: Path, internal: dict[str, str], own: str, timeout: float = 10.0
) -> list[subprocess.Popen]:
    """The sandbox's socat bridges (see `cleanroom.network.topology`), listening when this returns."""
    bridges = [subprocess.Popen(command) for command in bridge_commands(sockets, internal, own)]
    ports = [int(address.rsplit(":", 1)[1]) for name, address in internal.items() if name != own]
    deadline = time.monotonic() + timeout
    while not ((sockets / IN_SOCKET).exists() and all(port_listening(p) for p in ports)):
        if time.monotonic() > deadline or any(b.poll() is not None for b in bridges):
            raise SystemExit("the sandbox's bridges did not start (is socat installed?)")
        time.sleep(0.02)
    return bridges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cleanroom.secure.player")
    parser.add_argument("name")
    parser.add_argument("--cluster", required=True, help="JSON: member name -> loopback address")
    parser.add_argument("--sockets", required=True, type=Path)
    args = parser.parse_args(argv)
    internal = OrderedDict(json.loads(args.cluster))
    bridges = start_bridges(args.sockets, internal, args.name)
    # The bridges and terminator forward every message: they must not wait for CPU. Niced before
    # TensorFlow's import, too: the nodes' other steps (preparation, PSI) come first while players start.
    os.nice(PLAYER_NICENESS)
    try:
        if not secure_randomness_available():
            print("refusing to start: TF Encrypted secure randomness is not available", file=sys.stderr)
            return NO_SECURE_RANDOMNESS
        hostmap = OrderedDict((name, address) for name, address in internal.items() if name != COORDINATOR)
        server = import_tfe().RemoteConfig(hostmap, job_name=PLAYER_JOB).start_server(args.name, start=True)
        print(f"player {args.name} {SERVING}", flush=True)
        server.join()
    finally:
        for bridge in bridges:
            bridge.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
