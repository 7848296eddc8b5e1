"""One module per lifecycle phase; each @task is a few lines that call the `cleanroom` library."""

from prefect.cache_policies import NO_CACHE

# Party data, shares, keys and revealed figures must never land in Prefect's database: every task that
# touches them runs with result persistence and caching off.
PRIVATE = {"persist_result": False, "cache_policy": NO_CACHE}
