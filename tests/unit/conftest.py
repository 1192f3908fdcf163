"""Unit-test wiring: the hypothesis profiles of the fuzz tests (``test_*_fuzz.py``).

``HYPOTHESIS_PROFILE=deep`` runs many more examples (for the README's figures); the default
keeps each property at ~200 examples so the unit run stays fast. No deadline: the machine is
shared, and a slow example is not a bug in a parser.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("fuzz", max_examples=200, deadline=None)
settings.register_profile("deep", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))
