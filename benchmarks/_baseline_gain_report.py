"""The ``baseline_gain`` table: paired test differences per dataset, with intervals over seeds."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from benchmarks import harness

FIELDS = ("dataset", "seed", "n_test", "test", "baseline", "diff", "single_test", "baseline_C",
          "baseline_s", "wall_s", "load_s", "plan_s", "search_s", "refit_s", "export_s",
          "trials", "complete", "ensemble", "passes", "size_mb", "baseline_size_mb",
          "latency_ms", "baseline_latency_ms", "best", "commit", "load", "finished")


def t_interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% t-interval of the mean of ``values`` (None for fewer than two)."""
    from scipy import stats

    if len(values) < 2:
        return None
    mean, sem = statistics.fmean(values), statistics.stdev(values) / len(values) ** 0.5
    half = stats.t.ppf(0.975, len(values) - 1) * sem
    return mean - half, mean + half


def _f(row: dict, key: str) -> float:
    return float(row[key])


def summarise(rows: list[dict]) -> list[dict]:
    """One summary per dataset: mean paired gain with its interval, and the cost figures."""
    by = defaultdict(list)
    for row in rows:
        by[row["dataset"]].append(row)
    out = []
    for name, group in sorted(by.items()):
        diffs = [_f(r, "diff") for r in group]
        single = [_f(r, "single_test") - _f(r, "baseline") for r in group]
        out.append({
            "dataset": name, "seeds": len(group), "n_test": round(statistics.fmean(
                _f(r, "n_test") for r in group)),
            "test": statistics.fmean(_f(r, "test") for r in group),
            "baseline": statistics.fmean(_f(r, "baseline") for r in group),
            "gain": statistics.fmean(diffs), "interval": t_interval(diffs),
            "single_gain": statistics.fmean(single),
            "wall_s": statistics.fmean(_f(r, "wall_s") for r in group),
            "search_s": statistics.fmean(_f(r, "search_s") for r in group),
            "post_s": statistics.fmean(_f(r, "refit_s") + _f(r, "export_s") for r in group),
            "trials": statistics.fmean(_f(r, "trials") for r in group),
            "ensemble": statistics.fmean(_f(r, "ensemble") for r in group),
            "latency": statistics.fmean(_f(r, "latency_ms") / _f(r, "baseline_latency_ms")
                                        for r in group),
            "size": statistics.fmean(_f(r, "size_mb") for r in group)})
    return out


def report(rows: list[dict], path: Path, command: str) -> Path:
    """Write the Markdown table of ``rows`` (every finished pair) to ``path``."""
    stamp = harness.Stamp.now()
    commits = sorted({r["commit"] for r in rows})
    summary = summarise(rows)
    lines = ["# fit_auto (default settings) against logistic regression on Lite0 features",
             "", f"Command: `{command}` (resumable; `--report-only` rewrites this table).",
             f"Rows from commit{'s' if len(commits) > 1 else ''} {', '.join(commits) or '-'}"
             + (" (MIXED code versions: not one table)" if len(commits) > 1 else "")
             + f"; machine load while the rows ran: "
               f"{', '.join(sorted({r['load'].split(',')[0] for r in rows})) or '-'} "
               f"(1-minute averages); table written {stamp.time_utc}.", ""]
    if not summary:
        return harness.write_report(path, lines + ["No finished pairs yet."])
    gains = [s["gain"] for s in summary]
    lines += [f"Median over {len(summary)} datasets of the mean paired gain: "
              f"**{statistics.median(gains):+.4f}**; lowest dataset mean {min(gains):+.4f}; "
              f"{sum(g > 0 for g in gains)} of {len(gains)} datasets above 0. The best single "
              f"trial alone (no ensemble): median gain "
              f"{statistics.median(s['single_gain'] for s in summary):+.4f}.", ""]
    body = []
    for s in summary:
        interval = s["interval"]
        body.append((s["dataset"], s["seeds"], s["n_test"], f"{s['test']:.4f}",
                     f"{s['baseline']:.4f}", f"{s['gain']:+.4f}",
                     f"[{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "-",
                     f"{s['single_gain']:+.4f}", f"{s['wall_s']:.0f}", f"{s['search_s']:.0f}",
                     f"{s['post_s']:.0f}", f"{s['trials']:.1f}", f"{s['ensemble']:.1f}",
                     f"{s['latency']:.2f}x", f"{s['size']:.0f}"))
    lines += harness.table(("dataset", "seeds", "test images", "fit_auto test", "baseline test",
                            "gain", "95% interval", "gain, best single trial", "wall s",
                            "search s", "refit + export s", "trials", "ensemble members",
                            "latency vs baseline", "model MB"), body)
    lines += ["", "Gain: fit_auto's exported model minus the baseline, on the same test images "
              "of the same split (mean over seeds; the interval is a t-interval over seeds). "
              "Latency: median milliseconds per image of `predict_proba` on up to 64 test "
              "images, against the baseline exported as a product model (Lite0, linear head), "
              "measured in the same process."]
    return harness.write_report(path, lines)
