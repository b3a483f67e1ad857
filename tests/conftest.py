"""Suite-wide test settings.

Hypothesis runs derandomised (the same examples on every run, no example database), so that
a run's outcome and its warnings do not change from one run to the next, in CI or locally.
``HYPOTHESIS_PROFILE=random pytest`` explores new examples instead.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("derandomized", derandomize=True, database=None)
settings.register_profile("random", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))
