"""Shared test settings: hypothesis profile sized for a 2-core machine."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "clgraph",
    max_examples=int(os.environ.get("CLGRAPH_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("clgraph")
