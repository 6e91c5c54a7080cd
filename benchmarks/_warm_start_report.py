"""The Markdown report and anytime plot of the leave-one-out warm-start benchmark."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from pathlib import Path
from typing import NamedTuple

from benchmarks.harness import cell
from benchmarks._warm_start_stats import (ABSENT, FIELDS, LEVEL, against_default, anytime,
                                          at, curves, kb_evidence, summarise)

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks.warm_start_loo")
__all__ = ["ABSENT", "FIELDS", "Outputs", "at", "write_report"]


class Outputs(NamedTuple):
    """Where one benchmark job writes (its csv, md and png), the seed KB it runs against and
    the dataset root it reports missing datasets of."""

    csv: Path
    md: Path
    png: Path
    seed_kb: Path
    root: Path

    @classmethod
    def under(cls, results: Path, seed_kb: Path, root: Path) -> "Outputs":
        return cls(results / "warm_start_loo.csv", results / "warm_start_loo.md",
                   results / "warm_start_loo.png", seed_kb, root)


def write_report(rows: list[dict], max_trials: int, command: str, out: Outputs) -> None:
    table, goals = summarise(rows, max_trials)
    lines = ["# Warm start vs cold start, leave one dataset out", "",
             f"Command: `{command}`  ", f"Date: {dt.date.today().isoformat()}", "",
             "For each dataset, the KB is the seed KB without that dataset. `auto` = warm start "
             "from the KB, `none` = cold start, same trial budget, same seeds (a seed fixes the "
             "split, so warm and cold runs of one seed share the validation set). Values are "
             "validation accuracy, means over the seeds listed. *Trials to reach*: trials the "
             f"warm run needs to reach the cold run's best-of-{max_trials} for the same seed "
             f"({max_trials + 1} when it never does within the budget). Scores less than "
             f"{LEVEL} apart count as level, here and in the best@3 comparisons (one "
             "configuration scores up to ~1e-4 apart between runs). Under a time budget a "
             "search may end before the trial budget (see *fewest trials run*): its best-of-"
             f"{max_trials} is then the best of the trials it ran, and the anytime table "
             "carries that value forward.", "",
             "Every search here draws its trial seeds from its run seed and the trial number "
             "mixed (`transfer_automl.study.trial_seed`), so no cold search replays the "
             "configurations the seed KB holds, whatever seed built the KB. (With the earlier "
             "run seed + trial number, seed 1 replayed seed 0 shifted by one trial.) The seed "
             "KB's own searches ran at seeds 100-107.", "",
             "*Warm start* is what `auto` applied: `points+history` from the nearest datasets, "
             "or `points` alone for a dataset the KB finds far from everything (the "
             "configurations that rank best over the whole KB; README, step 2).", "",
             f"| dataset | seeds | warm start | cold best-of-{max_trials} | "
             f"warm best-of-{max_trials} | "
             "trials to reach (mean) | never reached | warm best@1 | cold best@1 | "
             "warm best@3 | cold best@3 | seeds warm@3 ahead/level/behind | "
             "fewest trials run (warm/cold) | search seconds, mean (warm/cold) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    absent = [t for t in table if t["dataset"] in ABSENT]
    for t in (t for t in table if t["dataset"] not in ABSENT):
        lines.append(f"| {t['dataset']} | {','.join(map(str, t['seeds']))} | {t['applied']} | "
                     f"{t['cold_best']:.4f} | {t['warm_best']:.4f} | {t['reach']:.2f} | "
                     f"{t['never']} | {t['warm1']:.4f} | {t['cold1']:.4f} | "
                     f"{t['warm3']:.4f} | {t['cold3']:.4f} | {'/'.join(map(str, t['wtl3']))} | "
                     f"{t['trials']} | {t['seconds']} |")
    missing = sorted({p.name for p in out.root.iterdir() if p.is_dir()}
                     - {t["dataset"] for t in table}) if out.root.is_dir() else []
    if missing:
        lines += ["", f"Not run yet (no seed with both modes): {', '.join(missing)}. The goal "
                  "statistics below cover only the datasets in the table."]
    if goals:
        lines += ["", f"**Median over {goals['n']} datasets of trials to reach cold best-of-"
                  f"{max_trials}: {goals['median_reach']:.2f}** (goal: <= 4).  ",
                  f"**Datasets where warm best@3 beats cold best@3: {goals['beats3']} of "
                  f"{goals['n']}** ({goals['ties3']} ties; goal: >= 6 of 8).  ",
                  "Per (dataset, seed) pair, warm best@3 is ahead/level/behind cold best@3: "
                  f"{'/'.join(map(str, goals['wtl3']))}.",
                  "", "The same statistics at each seed alone:", "",
                  "| seed | datasets | median trials to reach | warm best@3 beats cold | level |",
                  "|---|---|---|---|---|"]
        lines += [f"| {seed} | {n} | {reach:.1f} | {beats} of {n} | {level} |"
                  for seed, (n, reach, beats, level) in goals["per_seed"].items()]
    if absent:
        lines += ["", "## Domains absent from the KB (whole seed KB; warm start should back off "
                  "and lose nothing)",
                  "", f"| dataset | seeds | warm start | cold best-of-{max_trials} | warm best-of-"
                  f"{max_trials} | warm - cold | warm best@3 | cold best@3 | warm - cold @3 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for t in absent:
            lines.append(f"| {t['dataset']} | {','.join(map(str, t['seeds']))} | {t['applied']} | "
                         f"{t['cold_best']:.4f} | {t['warm_best']:.4f} | "
                         f"{t['warm_best'] - t['cold_best']:+.4f} | {t['warm3']:.4f} | "
                         f"{t['cold3']:.4f} | {t['warm3'] - t['cold3']:+.4f} |")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed trials", "",
                  "A failed trial counts as no result: the search goes on without it.", "",
                  "| dataset | mode | seed | trial | fidelity | seconds | reason |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['dataset']} | {r['mode']} | {r['seed']} | {r['trial']} | "
                  f"{r['fidelity']} | {r['cost_s']} | {cell(r.get('reason')) or '(not recorded)'} |"
                  for r in failed]
    lines += ["", "## Which trials beat the default", "",
              "Every trial's validation accuracy minus the default configuration's on the same "
              "split (the cold run's first trial for that dataset and seed), by what produced "
              "it: a prior point from the KB (the default itself left out) or a TPE draw, per "
              "phase of the multi-fidelity schedule. Pruned trials count with their best "
              "epoch. Every dataset and seed both modes ran, absent domains included.", ""]
    lines += against_default(rows)
    if out.seed_kb.exists():
        shown = (out.seed_kb.resolve().relative_to(REPO) if out.seed_kb.resolve().is_relative_to(
            REPO) else out.seed_kb)
        lines += ["", "## What the seed KB holds", "",
                  f"The trials of the seed KB (`{shown}`, built by "
                  "`benchmarks/build_seed_kb.py`) by dataset, fidelity and status.", ""]
        lines += kb_evidence(json.loads(out.seed_kb.read_text(encoding="utf-8")))
    lines += ["", "## Anytime: mean best-so-far validation accuracy after k trials", "",
              "Over the seeds both modes ran; the plot also shows runs still unpaired.", ""]
    lines += anytime(rows, max_trials)
    out.md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info("wrote %s", out.md)
    plot(rows, max_trials, out.png)


def plot(rows: list[dict], max_trials: int, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        log.info("matplotlib is not installed; no plot written (the md has the anytime table)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = curves(rows)
    names = sorted({k[0] for k in c})
    cols = min(4, len(names)) or 1
    fig, axes = plt.subplots(math.ceil(len(names) / cols), cols, squeeze=False,
                             figsize=(3.2 * cols, 2.6 * math.ceil(len(names) / cols)))
    for ax, name in zip(axes.flat, names):
        for mode, colour in (("auto", "tab:red"), ("none", "tab:blue")):
            for (d, m, s), v in c.items():
                if d == name and m == mode:
                    ax.plot(range(1, len(v) + 1), v, color=colour, alpha=0.7,
                            label=f"{'warm' if mode == 'auto' else 'cold'} s{s}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("trials", fontsize=8)
        ax.set_ylabel("best val acc", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log.info("wrote %s", path)
