"""Examples per fuzzed operation / property. The default keeps tests/fuzz at ~30 s of the suite;
a deeper run: ``FUZZ_MAX_EXAMPLES=200 FUZZ_RANDOM=1 scripts/test.sh tests/fuzz``."""

from __future__ import annotations

import os

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))
