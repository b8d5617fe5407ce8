"""Peak memory of data processing against input size: chunked against whole-file.

Two measurements, each run in a fresh subprocess (peak RSS is its own), side by side:

1. **Raw file size.** A CSV of N loans (made from the built-in sample) read and validated the
   way ``loanrisk data process`` reads it (parsed and validated 100,000 rows at a time), against
   reading it whole with pandas and validating the frame (the way it was read before).
2. **Expansion size.** The public dataset expanded to S rows, split, fitted and written by
   ``process_dataset`` (chunk by chunk); peak RSS should not grow with S.

    .venv/bin/python benchmarks/bench_memory.py --rows 250000 1000000 4000000 \\
        --sizes 1000000 4000000 16000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"
GIB = 2**30

CHUNKED = """
import json, resource, sys
from loanrisk.data.ingest import read_csv
loans = read_csv(sys.argv[1])
print(json.dumps({"rows": len(loans.frame),
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

WHOLE = """
import json, resource, sys
import pandas as pd
from loanrisk.schema.rawcsv import _READ_OPTIONS
from loanrisk.schema import validate_frame
loans = validate_frame(pd.read_csv(sys.argv[1], low_memory=False, **_READ_OPTIONS))
print(json.dumps({"rows": len(loans.frame),
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

EXPAND = """
import json, resource, sys
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.storage import FsspecStorage
loans = read_csv(sys.argv[1])
manifest = process_dataset(loans, FsspecStorage(sys.argv[3]), source="bench", size=int(sys.argv[2]))
print(json.dumps({"rows": manifest.rows.total,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def run(script: str, *args: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def make_csv(rows: int, path: Path) -> int:
    from loanrisk.data.sample import generate_sample

    block = generate_sample(min(rows, 250_000), seed=3)
    block.to_csv(path, index=False)
    body = block.to_csv(index=False, header=False).encode()
    with path.open("ab") as out:
        for _ in range(rows // len(block) - 1):
            out.write(body)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[250_000, 1_000_000, 4_000_000])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loanrisk-bench-") as scratch:
        print("raw CSV read and validated: peak RSS")
        print(f"{'rows':>10} {'file MiB':>9} {'chunked GiB':>12} {'whole GiB':>10} {'ratio':>6}")
        for rows in args.rows:
            path = Path(scratch) / f"loans-{rows}.csv"
            size = make_csv(rows, path)
            chunked, whole = run(CHUNKED, str(path)), run(WHOLE, str(path))
            assert chunked["rows"] == whole["rows"] == rows
            ratio = whole["rss"] / chunked["rss"]
            print(
                f"{rows:>10,} {size / 2**20:>9.0f} {chunked['rss'] / GIB:>12.2f} "
                f"{whole['rss'] / GIB:>10.2f} {ratio:>5.1f}x"
            )
            path.unlink()
        print(f"\nexpansion of {args.csv.name}: process_dataset peak RSS")
        print(f"{'size':>12} {'peak GiB':>9}")
        for size in args.sizes:
            out = Path(scratch) / f"store-{size}"
            result = run(EXPAND, str(args.csv), str(size), str(out))
            assert result["rows"] == size
            print(f"{size:>12,} {result['rss'] / GIB:>9.2f}")


if __name__ == "__main__":
    main()
