"""``python -m bench`` (``make bench``): every benchmark, one after the other; figures are printed.

About 15 minutes on 2 cores, most of it building the 10^8-prediction catalog of ``bench_scale``."""

from __future__ import annotations

from bench import bench_board_cache, bench_e2e, bench_ingest, bench_pipeline, bench_scale, bench_testbed


def main() -> int:
    status = bench_ingest.main([])
    print(flush=True)
    status = status or bench_testbed.main([])
    print(flush=True)
    status = status or bench_board_cache.main([])
    print(flush=True)
    status = status or bench_scale.main([])
    print(flush=True)
    status = status or bench_pipeline.main([])
    print(flush=True)
    return status or bench_e2e.main([])


if __name__ == "__main__":
    raise SystemExit(main())
