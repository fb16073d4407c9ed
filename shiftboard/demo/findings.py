"""Offline check of the demo's findings, with in-process torch (no servers): ``python -m
shiftboard.demo.findings [--small] [--seed N] [--out DIR]``.

Builds the testbed, trains the zoo, scores every model on every test set and prints, per shift, the
baseline fit over the standard models (slope, intercept, R² in logit and probit space, as
:mod:`shiftboard.domain.baseline` computes them) and the mean effective robustness of each
category. It is how the zoo was tuned; the demo itself measures the same through Triton.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shiftboard.demo.fonts import discover_fonts
from shiftboard.demo.testbed import NATURAL_NAME, REFERENCE_NAME, Testbed, build_testbed
from shiftboard.demo.zoo import ZooModel, train_zoo
from shiftboard.domain.baseline import effective_robustness, fit_baseline

__all__ = ["ShiftFinding", "accuracies", "analyse", "counterpart", "main", "report"]


def accuracies(testbed: Testbed, zoo: Sequence[ZooModel]) -> dict[str, dict[str, float]]:
    """``{model: {test set: accuracy}}``, the TorchScript files run in-process."""
    data = {}
    for t in testbed.testsets:
        with np.load(t.path, allow_pickle=False) as z:
            data[t.name] = (torch.from_numpy(z["images"].astype(np.float32) / 255.0).unsqueeze(1),
                            torch.from_numpy(z["labels"]))
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for m in zoo:
            model = torch.jit.load(str(m.path))
            out[m.name] = {name: float((model(x).argmax(1) == y).float().mean())
                           for name, (x, y) in data.items()}
    return out


@dataclass(frozen=True)
class ShiftFinding:
    """One shift: the baseline fit over the standard models and the ER (percentage points, logit fit)
    of every model; ``er_sd_standard`` is the spread of the standard models about their own line."""

    shift: str
    n_baseline: int
    r2_logit: float
    r2_probit: float
    slope_logit: float
    intercept_logit: float
    er: dict[str, float]                     # model -> ER (logit fit)
    er_probit: dict[str, float]              # model -> ER (probit fit)
    er_sd_standard: float

    def mean_er(self, zoo: Sequence[ZooModel], category: str, transform: str = "logit") -> float:
        er = self.er if transform == "logit" else self.er_probit
        return float(np.mean([er[m.name] for m in zoo if m.category == category]))


def analyse(acc: dict[str, dict[str, float]], zoo: Sequence[ZooModel], shift: str,
            reference: str = REFERENCE_NAME) -> ShiftFinding:
    """Fit ``shift`` on ``reference`` over the standard models; ER of every model."""
    base = [m for m in zoo if m.category == "standard"]
    x = [acc[m.name][reference] for m in base]
    y = [acc[m.name][shift] for m in base]
    fits = {t: fit_baseline(x, y, t, models=[m.name for m in base]) for t in ("logit", "probit")}
    slope, intercept = fits["logit"].coefficients()
    er = {t: {m.name: effective_robustness(fits[t], acc[m.name][reference], acc[m.name][shift]) for m in zoo}
          for t in fits}
    return ShiftFinding(shift, len(base), float(fits["logit"].r2 or 0.0), float(fits["probit"].r2 or 0.0),
                        slope, intercept, er["logit"], er["probit"],
                        float(np.std([er["logit"][m.name] for m in base], ddof=1)))


def counterpart(model: ZooModel, zoo: Sequence[ZooModel]) -> ZooModel | None:
    """The standard model trained like ``model`` but without its intervention or extra data."""
    s = model.spec
    for m in zoo:
        t = m.spec
        same = (t.arch, t.width, t.train_size, t.epochs) == (s.arch, s.width, 0, s.epochs)
        if m.category == "standard" and same and not t.noise_sigma and not t.extra_size:
            return m
    return None


CATEGORIES = ("standard", "robustness-intervention", "more-data")


def report(acc: dict[str, dict[str, float]], zoo: Sequence[ZooModel], shifts: Sequence[str]) -> str:
    """The findings as text: fits and mean ER per category for each shift, corruption-type means,
    and each intervention's ER gain over its standard counterpart."""
    findings = {s: analyse(acc, zoo, s) for s in shifts}
    lines = [f"{'shift':22s} {'R2 logit':>8s} {'R2 probit':>9s} {'slope':>5s} {'sd std':>6s}  "
             + "  ".join(f"{c[:12]:>12s}" for c in CATEGORIES) + "   (mean ER, pp, logit fit)"]
    for s, f in findings.items():
        lines.append(f"{s:22s} {f.r2_logit:8.3f} {f.r2_probit:9.3f} {f.slope_logit:5.2f} "
                     f"{f.er_sd_standard:6.1f}  "
                     + "  ".join(f"{f.mean_er(zoo, c):+12.1f}" for c in CATEGORIES))
    groups: dict[str, list[str]] = {}
    for s in shifts:
        if s.startswith(f"{REFERENCE_NAME}-c-"):
            groups.setdefault(s.rsplit("-", 1)[0], []).append(s)
    if groups:
        lines.append("")
        lines.append("corruption type, mean over severities:")
        for g, members in groups.items():
            means = [np.mean([findings[s].mean_er(zoo, c) for s in members]) for c in CATEGORIES]
            r2 = np.mean([findings[s].r2_probit for s in members])
            lines.append(f"  {g:20s} mean R2 probit {r2:.2f}  "
                         + "  ".join(f"{c}: {v:+.1f}" for c, v in zip(CATEGORIES, means, strict=True)))
    lines.append("")
    lines.append("ER gain over the standard counterpart (same architecture and epochs, digits only):")
    natural = [s for s in shifts if s == NATURAL_NAME]
    noise = [s for s in shifts if s.startswith(f"{REFERENCE_NAME}-c-noise-")]
    for m in zoo:
        c = counterpart(m, zoo) if m.category != "standard" else None
        if c is None:
            continue
        parts = [f"ref {100 * (acc[m.name][REFERENCE_NAME] - acc[c.name][REFERENCE_NAME]):+5.1f}"]
        if natural:
            f = findings[natural[0]]
            parts.append(f"natural ER {f.er[m.name] - f.er[c.name]:+5.1f}")
        if noise:
            gain = np.mean([findings[s].er[m.name] - findings[s].er[c.name] for s in noise])
            parts.append(f"noise ER (mean of {len(noise)}) {gain:+5.1f}")
        lines.append(f"  {m.name:24s} vs {c.name:18s} " + "  ".join(parts))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--system-fonts", choices=("yes", "no"), default="yes",
                        help="'no' uses only the fonts shipped by the project's dependencies")
    parser.add_argument("--per-model", action="store_true", help="print every model's accuracies")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        t0 = time.perf_counter()
        fonts = discover_fonts(system=args.system_fonts == "yes")
        testbed = build_testbed(out / "testbed", small=args.small, seed=args.seed, fonts=fonts)
        t1 = time.perf_counter()
        zoo = train_zoo(testbed, out / "zoo", small=args.small, seed=args.seed)
        t2 = time.perf_counter()
        acc = accuracies(testbed, zoo)
        print(f"testbed {t1 - t0:.1f} s ({len(testbed.testsets)} test sets), zoo {t2 - t1:.1f} s "
              f"({len(zoo)} models), scoring {time.perf_counter() - t2:.1f} s")
        print(f"fonts: {len(testbed.test_fonts)} test faces, {len(testbed.extra_fonts)} extra-training "
              f"faces; natural shift {testbed.natural.num_samples} images, extra training "
              f"{len(testbed.extra_train_labels)}")
        shifts = [t.name for t in testbed.testsets if t.kind != "reference"]
        if args.per_model:
            for m in zoo:
                row = " ".join(f"{acc[m.name][s]:.3f}" for s in shifts)
                print(f"{m.name:24s} {m.category[:8]:8s} ref {acc[m.name][REFERENCE_NAME]:.3f} | {row}")
        print(report(acc, zoo, shifts))


if __name__ == "__main__":
    main()
