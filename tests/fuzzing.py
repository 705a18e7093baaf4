"""Hypothesis profiles shared by the fuzzed readers of untrusted input (baseline files, reports, manifests, CSVs).

``HYPOTHESIS_PROFILE=thorough`` runs 20 000 examples per reader (once, by hand, for a closing note); the default
profile is the small one CI and the test tiers run. Every fuzz test uses :data:`FUZZ_SETTINGS` through
``@FUZZ_SETTINGS`` or ``settings(parent=...)`` so the profile applies to all of them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
THOROUGH_PROFILE = "thorough"
#: examples per reader in the default profile (CI, the quick tier): a check that each reader still refuses in one
#: line; the thorough profile is the search
QUICK_EXAMPLES = 50
#: examples per reader in the thorough profile
THOROUGH_EXAMPLES = 20_000

_COMMON = dict(deadline=None, derandomize=False, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large, HealthCheck.large_base_example])

settings.register_profile("quick", max_examples=QUICK_EXAMPLES, **_COMMON)
settings.register_profile(THOROUGH_PROFILE, max_examples=THOROUGH_EXAMPLES, **_COMMON)
settings.load_profile(os.environ.get(PROFILE_ENV) or "quick")

#: the active profile's settings, for ``@FUZZ_SETTINGS`` on each fuzz test
FUZZ_SETTINGS = settings()
