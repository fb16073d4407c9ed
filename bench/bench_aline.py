"""Benchmark of accuracy without labels (agreement on the line) on the demo testbed, labels hidden.

Builds the demo testbed and trains the demo zoo in this process (no servers; ``--out DIR`` keeps them
for the next run), runs every zoo model with torch on the reference and on every labelled shift,
then for each shift hides its labels and predicts every model's shift accuracy from top-1
predictions only (:func:`shiftboard.domain.agreement.estimate_shift_accuracy`, ALine-S and ALine-D;
the reference accuracies are known). Printed per shift: the agreement line's R² (probit axes; below
``MIN_R2`` the estimates carry a warning), the accuracy line's R² for comparison (it needs the
hidden labels), and the mean absolute error in percentage points of predicted against true shift
accuracy, over every zoo model, for ALine-S, ALine-D and the naive "shift accuracy = reference
accuracy"; the share of models whose true shift accuracy lies in ALine-D's 95% bootstrap interval
(:func:`shiftboard.domain.agreement_bootstrap.bootstrap_estimates`, ``--resamples``, both test sets
resampled) and the interval's mean width; then the means over the shifts and the run time.

``--models N`` subsamples the zoo (a seeded choice that always keeps 3 or more models; the output
says so); ``--small`` uses the demo's small testbed and zoo (6 models, 4 shifts).

    python -m bench.bench_aline [--out DIR] [--small] [--models N] [--resamples 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from shiftboard.demo.testbed import REFERENCE_NAME, Testbed, build_testbed, load_testbed
from shiftboard.domain.agreement import MIN_R2, estimate_shift_accuracy
from shiftboard.domain.agreement_bootstrap import bootstrap_estimates
from shiftboard.domain.baseline import fit_baseline

if TYPE_CHECKING:  # the zoo imports torch: only when the benchmark runs
    from shiftboard.demo.zoo import ZooModel

Ints = NDArray[np.int64]


@dataclass(frozen=True)
class ShiftResult:
    name: str
    samples: int
    agreement_r2: float
    accuracy_r2: float
    mae_s: float
    mae_d: float
    mae_naive: float
    covered: float  # share of models whose true accuracy lies in ALine-D's interval
    width: float  # mean width of ALine-D's interval, points


def _top1(paths: dict[str, Path], model_paths: Sequence[Path]) -> tuple[dict[str, Ints], dict[str, Ints]]:
    """({test set: top-1 [models, samples]}, {test set: labels}), the TorchScript models run in-process."""
    import torch

    inputs, labels = {}, {}
    for name, path in paths.items():
        with np.load(path, allow_pickle=False) as z:
            inputs[name] = torch.from_numpy(z["images"].astype(np.float32) / 255.0).unsqueeze(1)
            labels[name] = z["labels"].astype(np.int64)
    rows: dict[str, list[Ints]] = {name: [] for name in paths}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(min(2, threads))
        with torch.no_grad():
            for path in model_paths:
                model = torch.jit.load(str(path))
                for name, x in inputs.items():
                    rows[name].append(model(x).argmax(1).numpy().astype(np.int64))
    finally:
        torch.set_num_threads(threads)
    return {name: np.stack(r) for name, r in rows.items()}, labels


def _build(out: Path, small: bool, seed: int) -> tuple[float, Testbed, list[ZooModel]]:
    """The testbed and zoo under ``out`` (loaded when already there); seconds spent building."""
    from shiftboard.demo.zoo import load_zoo, train_zoo

    start = time.perf_counter()
    try:
        testbed = load_testbed(out / "testbed")
        if testbed.small != small or testbed.seed != seed:
            raise FileNotFoundError("another testbed")
        zoo = load_zoo(out / "zoo")
    except FileNotFoundError:
        testbed = build_testbed(out / "testbed", small=small, seed=seed)
        zoo = train_zoo(testbed, out / "zoo", small=small, seed=seed)
    return time.perf_counter() - start, testbed, list(zoo)


def evaluate(top1: dict[str, Ints], labels: dict[str, Ints], reference: str,
             resamples: int = 200) -> list[ShiftResult]:
    """Every shift's agreement-line R², the three errors (percentage points) and ALine-D's interval."""
    correct_ref = top1[reference] == labels[reference][None, :]
    ref_acc = correct_ref.mean(axis=1)
    no_baseline = np.zeros(ref_acc.size, dtype=bool)  # the shift accuracy's interval only, no ER
    results = []
    for name in top1:
        if name == reference:
            continue
        true = (top1[name] == labels[name][None, :]).mean(axis=1)
        by_s = estimate_shift_accuracy(top1[reference], top1[name], ref_acc, method="aline-s")
        by_d = estimate_shift_accuracy(top1[reference], top1[name], ref_acc, method="aline-d")
        fit = fit_baseline(ref_acc, true, "probit", n_ref=top1[reference].shape[1], n_shift=top1[name].shape[1])
        ci = bootstrap_estimates(top1[reference], top1[name], correct_ref, no_baseline, method="aline-d",
                                 transform="probit", er=np.zeros(ref_acc.size), resamples=resamples,
                                 ref_key=reference, shift_key=name).shift_acc_ci
        results.append(ShiftResult(
            name=name, samples=top1[name].shape[1], agreement_r2=by_d.line.r2,
            accuracy_r2=float(fit.r2) if fit.r2 is not None else float("nan"),
            mae_s=100 * float(np.mean(np.abs(by_s.shift_acc - true))),
            mae_d=100 * float(np.mean(np.abs(by_d.shift_acc - true))),
            mae_naive=100 * float(np.mean(np.abs(ref_acc - true))),
            covered=float(np.mean((ci[:, 0] <= true) & (true <= ci[:, 1]))),
            width=100 * float(np.mean(ci[:, 1] - ci[:, 0]))))
    return results


def report(results: Sequence[ShiftResult]) -> str:
    lines = [f"{'shift':22s} {'samples':>7s} {'agr R2':>7s} {'acc R2':>7s} {'ALine-S':>8s} {'ALine-D':>8s} "
             f"{'naive':>7s} {'covered':>8s} {'width':>6s}   (MAE, pp; ALine-D 95% interval)"]
    for r in results:
        flag = "" if r.agreement_r2 >= MIN_R2 else "  (warned: R2 < MIN_R2)"
        lines.append(f"{r.name:22s} {r.samples:7d} {r.agreement_r2:7.3f} {r.accuracy_r2:7.3f} {r.mae_s:8.2f} "
                     f"{r.mae_d:8.2f} {r.mae_naive:7.2f} {100 * r.covered:7.0f}% {r.width:6.2f}{flag}")

    def means(rows: Sequence[ShiftResult]) -> str:
        m = [float(np.mean([getattr(r, f) for r in rows])) for f in ("mae_s", "mae_d", "mae_naive", "covered",
                                                                        "width")]
        return f"{m[0]:8.2f} {m[1]:8.2f} {m[2]:7.2f} {100 * m[3]:7.0f}% {m[4]:6.2f}"

    lines.append(f"{'mean over ' + str(len(results)) + ' shifts':38s} {means(results)}")
    trusted = [r for r in results if r.agreement_r2 >= MIN_R2]
    if trusted and len(trusted) < len(results):
        lines.append(f"{'mean, R2 >= ' + str(MIN_R2) + f' ({len(trusted)} shifts)':38s} {means(trusted)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the testbed and zoo here and reuse them (default: a temporary folder)")
    parser.add_argument("--small", action="store_true", help="the demo's small testbed and zoo")
    parser.add_argument("--models", type=int, default=0, help="use this many zoo models (0: all)")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples of ALine-D's interval")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-aline-") as tmp:
        out = args.out or Path(tmp)
        build_s, testbed, models = _build(out, args.small, args.seed)
        note = ""
        if 0 < args.models < len(models):
            keep = np.sort(np.random.default_rng(args.seed).choice(len(models), max(3, args.models), replace=False))
            note = f" (subsampled from {len(models)}, seed {args.seed})"
            models = [models[int(i)] for i in keep]
        t0 = time.perf_counter()
        # every set but the second reference (digits-printed-train-fonts): the shifts of digits, and digits
        sets = {t.name: t.path for t in testbed.testsets if t.kind != "reference" or t.name == REFERENCE_NAME}
        top1, labels = _top1(sets, [m.path for m in models])
        predict_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = evaluate(top1, labels, REFERENCE_NAME, args.resamples)
        estimate_s = time.perf_counter() - t1
    print("\nAccuracy without labels (agreement on the line) on the demo testbed, shift labels hidden")
    print(f"  {len(models)} zoo models{note}, reference {REFERENCE_NAME} ({top1[REFERENCE_NAME].shape[1]} images), "
          f"{len(results)} labelled shifts{' (small testbed)' if args.small else ''}; "
          f"MAE over all models of |predicted - true| shift accuracy, percentage points")
    print(report(results))
    print(f"  time: build/load testbed + zoo {build_s:.1f} s, predictions {predict_s:.1f} s, "
          f"estimates ({2 * len(results)} calls) and intervals ({args.resamples} resamples each) {estimate_s:.2f} s, "
          f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
