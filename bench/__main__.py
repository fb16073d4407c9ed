"""``python -m bench`` (``make bench``): every benchmark, one after the other; figures are printed.

About 15 minutes on 2 cores, most of it building the 10^8-prediction catalog of ``bench_scale``;
``aline`` (accuracy without labels on the demo testbed, labels hidden) takes about a minute."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from bench import bench_aline, bench_board_cache, bench_e2e, bench_ingest, bench_pipeline, bench_scale, bench_testbed

BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "ingest": bench_ingest.main,
    "testbed": bench_testbed.main,
    "board_cache": bench_board_cache.main,
    "scale": bench_scale.main,
    "pipeline": bench_pipeline.main,
    "e2e": bench_e2e.main,
    "aline": bench_aline.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmarks one after the other and print their figures and ratios. "
                    "Each one also runs alone with its own options: python -m bench.bench_<name> --help.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    status = 0
    for index, name in enumerate(args.names or BENCHMARKS):
        if index:
            print(flush=True)
        status = status or BENCHMARKS[name]([])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
