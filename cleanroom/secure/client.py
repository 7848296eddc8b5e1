"""The coordinator's secure-computation client, run as its own process so TensorFlow's process-wide
cluster connection never outlives one computation: reads a request (aggregate totals or matrix
factorization) plus the hostmap as JSON on stdin, prints the revealed result as JSON on stdout."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict

from pydantic import BaseModel

from cleanroom.errors import CleanroomError
from cleanroom.secure.aggregates import run_totals
from cleanroom.secure.factorization import FactorizationRequest, run_training
from cleanroom.secure.requests import AggregateRequest
from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness
from cleanroom.secure.shared_sales import SharedSalesRequest, run_shared_sales

RESULT_PREFIX = "CLEANROOM-SECURE "
REQUESTS: dict[str, type[BaseModel]] = {
    "totals": AggregateRequest,
    "factorization": FactorizationRequest,
    "shared_sales": SharedSalesRequest,
}


def main() -> int:
    message = json.loads(sys.stdin.read())
    kind = message.get("kind", "totals")
    request: AggregateRequest | FactorizationRequest | SharedSalesRequest = REQUESTS[kind].model_validate(
        message["request"]
    )
    try:
        secure = require_secure_randomness(request.allow_insecure_randomness)
        tfe = import_tfe()
        config = tfe.RemoteConfig(OrderedDict(message["hostmap"]))
        config.connect_servers()
        with protocol_scope(request.protocol, config, request.players) as prot:
            revealed: BaseModel
            if isinstance(request, FactorizationRequest):
                revealed = run_training(request)
            elif isinstance(request, SharedSalesRequest):
                revealed = run_shared_sales(request, prot)
            else:
                revealed = run_totals(request, prot, secure)
    except CleanroomError as exc:
        print(RESULT_PREFIX + json.dumps({"error": exc.one_line()}), flush=True)
        return 3
    print(RESULT_PREFIX + revealed.model_dump_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
