"""``python -m benchmarks SUITE [options]``: the same as ``transfer-automl benchmark``."""

import sys

from benchmarks import SUITES, describe, run

if len(sys.argv) < 2 or sys.argv[1] not in SUITES:
    print("usage: python -m benchmarks SUITE [--quick] [options]\n\nsuites:")
    for name in SUITES:
        print(f"  {name:18} {describe(name)}")
    sys.exit(0 if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help") else 2)
sys.exit(run(sys.argv[1], sys.argv[2:]))
