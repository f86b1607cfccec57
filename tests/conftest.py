"""Hypothesis profiles: "ci" (the default: 300 examples per property, derandomized so that CI
is reproducible), "dev" (more examples, fresh random ones each run) and "quick".

Choose one with the environment variable SYMGRAD_HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                      HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=300, derandomize=True, **_COMMON)
settings.register_profile("dev", max_examples=2000, **_COMMON)
settings.register_profile("quick", max_examples=30, derandomize=True, **_COMMON)
settings.load_profile(os.environ.get("SYMGRAD_HYPOTHESIS_PROFILE", "ci"))
