"""Entry point of one secure-computation player: `python -m cleanroom.secure.player NAME --config FILE`.

Started by a party with its own workspace as working directory, so the relative input paths in the
graph resolve to that party's files. Refuses to serve without secure randomness unless allowed.
"""

from __future__ import annotations

import argparse
import os
import sys

from cleanroom.secure.runtime import import_tfe, secure_randomness_available


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cleanroom.secure.player")
    parser.add_argument("name")
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    if not secure_randomness_available() and os.environ.get("CLEANROOM_ALLOW_INSECURE_RANDOMNESS") != "1":
        print("refusing to start: TF Encrypted secure randomness is not available", file=sys.stderr)
        return 4
    tfe = import_tfe()
    config = tfe.RemoteConfig.load(args.config)
    server = config.start_server(args.name, start=True)
    print(f"player {args.name} serving", flush=True)
    server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
