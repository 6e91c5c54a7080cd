"""Transfer in minutes: warm-start methods replayed on the recorded meta-dataset.

Every portfolio configuration was trained once on every shared dataset
(``benchmarks/results/meta_dataset/portfolio_v1.jsonl``, built by the ``meta_dataset``
suite). Holding out one dataset at a time, each method orders the configurations from what
the other datasets recorded (and the held-out dataset's embedding); the replay reads the
held-out dataset's recorded scores and costs in that order. Reported: regret (best
achievable minus best found, in accuracy) after 1, 3, 5, 10 trials and after 30, 120, 600
recorded seconds, as paired differences against a random order with 95% t-intervals over
the held-out datasets; trials until within one point of the best; how regret falls as the
knowledge base holds more datasets; and whether datasets near in embedding agree on which
configurations win.

    transfer-automl benchmark transfer
    transfer-automl benchmark transfer --kb knowledge_base/seed_kb.json
    transfer-automl benchmark transfer --quick

``--kb`` reads the table from a knowledge base instead (a KB file, a SQLAlchemy URL, or a KB
export such as the seed KB): the portfolio build's rows and the embeddings stored with their
datasets, the same table the product holds (rows that searches added, on their own splits,
are left out).

Writes ``transfer_replay.md``; dataset embeddings (summaries, no images) are computed once
and kept in ``meta_dataset/embeddings_v1.json``. ``--quick``: a generated meta-dataset of
eight datasets in two families with planted preferences, in seconds.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from benchmarks import _replay_goal as goal
from benchmarks import _replay_methods as rm
from benchmarks import harness

QUICK = {"synthetic": True, "permutations": 50, "subsets": 5}
DEFAULT_CONFIG = "x-l0-224-avg"  # the portfolio's first entry: an exact linear head on Lite0
log = logging.getLogger("benchmarks.transfer_replay")


def configure(parser) -> None:
    meta = harness.RESULTS / "meta_dataset"
    parser.add_argument("--rows", type=Path, default=meta / "portfolio_v1.jsonl")
    parser.add_argument("--embeddings", type=Path, default=meta / "embeddings_v1.json")
    parser.add_argument("--kb", default=None, metavar="PATH",
                        help="read the rows from this knowledge base (file, URL or JSON "
                             "export) instead of --rows")
    parser.add_argument("--budgets", nargs="+", type=int, default=[1, 3, 5, 10])
    parser.add_argument("--seconds", nargs="+", type=float, default=[30.0, 120.0, 600.0])
    parser.add_argument("--permutations", type=int, default=500,
                        help="random orders averaged for the random baselines")
    parser.add_argument("--subsets", type=int, default=20,
                        help="random knowledge-base subsets per size for the KB-size curve")
    parser.add_argument("--synthetic", action="store_true",
                        help="replay a generated meta-dataset (what --quick does)")
    parser.add_argument("--repetitions", type=int, default=20,
                        help="repetitions (random 80%% of the other datasets) of the goal "
                             "figures")
    parser.add_argument("--budget", type=float, default=600.0,
                        help="B: recorded trial seconds of the time-to-target figure")


def run(args) -> int:
    if args.synthetic:
        args.rows, args.embeddings = write_synthetic(args.out / "synthetic")
    if args.kb is not None and not args.synthetic:
        from benchmarks._replay_kb import kb_table

        table, vectors = kb_table(args.kb)
        args.rows = args.kb
        meta = matrix(table, vectors, args.embeddings, args)
    else:
        meta = load(args.rows, args.embeddings, args)
    log.info("replaying %d datasets x %d configurations", len(meta.datasets), len(meta.configs))
    lines = report(meta, args)
    harness.write_report(args.out / "transfer_replay.md", lines)
    return 0


def load(rows_path: Path, embeddings_path: Path, args) -> rm.Meta:
    """The score matrix over configurations recorded on every dataset."""
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for line in rows_path.read_text().splitlines():
        r = json.loads(line)
        score = r["score"] if r["state"] == "complete" and r["score"] is not None else 0.0
        rows.setdefault(r["dataset"], {})[r["config_id"]] = (float(score), float(r["wall_s"]))
    return matrix(rows, {}, embeddings_path, args)


def matrix(rows: dict[str, dict[str, tuple[float, float]]], known: dict[str, np.ndarray],
           embeddings_path: Path, args) -> rm.Meta:
    """``rows`` (dataset -> configuration id -> (score, seconds)) as a meta-dataset over the
    configurations every dataset has; embeddings from ``known``, else the embeddings file."""
    common = sorted(set.intersection(*(set(v) for v in rows.values())))
    datasets = sorted(d for d in rows if len(rows[d]) >= len(common))
    vectors = {**embeddings([d for d in datasets if d not in known], embeddings_path, args),
               **{d: known[d] for d in datasets if d in known}}
    return rm.Meta(tuple(datasets), tuple(common),
                   np.array([[rows[d][c][0] for c in common] for d in datasets]),
                   np.array([[rows[d][c][1] for c in common] for d in datasets]),
                   np.stack([vectors[d] for d in datasets]))


def embeddings(names: list[str], path: Path, args) -> dict[str, np.ndarray]:
    """Each dataset's embedding, computed once (as ``fit_auto`` embeds it) and kept."""
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in names if n not in known]
    if missing:
        from transfer_automl.data import load_dataset
        from transfer_automl.embedding import BackboneStatsEmbedder

        embedder = BackboneStatsEmbedder(cache_dir=args.cache / "backbones", seed=0)
        for name in missing:
            folder = harness.resolve(name, args.root)
            if folder is None:
                raise SystemExit(f"dataset {name!r} not found under {args.root} (needed once "
                                 f"for its embedding)")
            data = load_dataset(folder, seed=0, workdir=args.cache / "datasets")
            known[name] = [float(f"{v:.5g}") for v in embedder.embed(data)]
            path.write_text(json.dumps(known, separators=(",", ":")))
            log.info("embedded %s", name)
    return {n: np.asarray(known[n], dtype=np.float64) for n in names}


def _interval(diffs) -> str:
    from scipy.stats import t

    diffs = np.asarray(diffs, dtype=float)
    mean = float(diffs.mean())
    if len(diffs) < 2:
        return f"{mean:+.3f}"
    half = float(t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs)))
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def evaluate(meta: rm.Meta, args, keep=None, methods=None) -> dict[str, np.ndarray]:
    """Per method: ``[held-out datasets, budgets + seconds + 1]`` regrets and trials to
    reach within one point of the best (last column)."""
    if methods is None:
        from benchmarks._replay_kb import KnowledgeBasePriors

        methods = {**rm.ORDERED, "learned ranker": goal.learned_ranker,
                   "warm start auto (fit_auto)": KnowledgeBasePriors()}
    n_configs = len(meta.configs)
    first = meta.configs.index(DEFAULT_CONFIG) if DEFAULT_CONFIG in meta.configs else 0
    out: dict[str, list] = {}
    for i in range(len(meta.datasets)):
        learn = meta.without(i, keep[i] if keep is not None else None)
        s, c = meta.scores[i], meta.costs[i]

        def measure(order):
            trials, seconds = rm.regret_curves(s, c, order, args.budgets, args.seconds)
            return [*trials, *seconds, rm.trials_to_reach(s, order, 0.01)]

        if keep is None:
            for name, extra in (("random", None), ("default first", first)):
                orders = rm.random_orders(n_configs, args.permutations, seed=i, first=extra)
                out.setdefault(name, []).append(np.mean([measure(o) for o in orders], axis=0))
        for name, method in methods.items():
            out.setdefault(name, []).append(measure(method(learn, meta.embeddings[i])))
    return {name: np.array(rows) for name, rows in out.items()}


def kb_size_curve(meta: rm.Meta, args, method: str = "similarity greedy") -> list[tuple]:
    """Mean regret after 5 trials when ``method`` learns from only ``m`` random other
    datasets, for growing ``m``: does a larger knowledge base save trials?"""
    n = len(meta.datasets)
    sizes = sorted({m for m in (1, 2, 4, 8, n - 1) if 1 <= m <= n - 1})
    k = args.budgets.index(5) if 5 in args.budgets else 0
    rng = np.random.default_rng(0)
    rows = []
    for m in sizes:
        means = []
        for _ in range(args.subsets if m < n - 1 else 1):
            keep = [list(rng.choice([j for j in range(n) if j != i], m, replace=False))
                    for i in range(n)]
            means.append(evaluate(meta, args, keep, {method: rm.ORDERED[method]})[method][:, k])
        rows.append((m, float(np.mean(means))))
    return rows


def report(meta: rm.Meta, args) -> list[str]:
    results = evaluate(meta, args)
    base = results["random"]
    labels = [f"{k} trials" for k in args.budgets] + [f"{t:g} s" for t in args.seconds]
    lines = [f"# Transfer replay ({len(meta.datasets)} held-out datasets, "
             f"{len(meta.configs)} configurations)", "", harness.Stamp.now().line(), "",
             f"Command: `{args.command}`", "",
             f"Rows: `{args.rows}`; datasets: {', '.join(meta.datasets)}.", "",
             "## Mean regret (best achievable minus best found, accuracy)", ""]
    lines += harness.table(["method", *labels, "trials to within 0.01 (mean)"],
                           [[name, *(f"{v:.3f}" for v in r.mean(axis=0)[:-1]),
                             f"{r[:, -1].mean():.1f}"] for name, r in results.items()])
    lines += ["", "## Paired against a random order: regret saved (random minus method), "
              "mean [95% t-interval] over held-out datasets", ""]
    lines += harness.table(["method", *labels],
                           [[name, *(_interval(base[:, j] - r[:, j])
                                     for j in range(len(labels)))]
                            for name, r in results.items() if name != "random"])
    lines += ["", "## Knowledge-base size: mean regret after 5 trials (similarity greedy, "
              f"{args.subsets} random KB subsets per size)", ""]
    lines += harness.table(["datasets in the KB", "regret"],
                           [[m, f"{v:.3f}"] for m, v in kb_size_curve(meta, args)])
    lines += goal_section(meta, args)
    dist, agree = rm.rank_agreement(meta)
    from scipy.stats import spearmanr

    rho = spearmanr(dist, agree).statistic if len(dist) > 2 else float("nan")
    nearest = [agree_of_nearest(meta, i) for i in range(len(meta.datasets))]
    lines += ["", "## Does the embedding find datasets that agree?", "",
              f"Spearman correlation, over dataset pairs, between embedding distance and the "
              f"rank agreement of their configuration scores: {rho:+.3f} (negative: nearer "
              f"datasets agree more). Mean rank agreement with the nearest dataset "
              f"{np.mean(nearest):+.3f}, with any other dataset {agree.mean():+.3f}."]
    return lines


#: The method the product uses (warm_start="auto"): the goal figures and the KB-size curve
#: are reported for it.
CHOSEN = "similarity greedy"


def goal_section(meta: rm.Meta, args) -> list[str]:
    """The issue's goal figures, both protocols, and the KB-size curve in time to target."""
    methods = {"random": lambda m, q: list(np.random.default_rng(len(m.datasets)).permutation(
                   len(m.configs))),
               **{k: rm.ORDERED[k] for k in ("greedy portfolio", "nearest neighbour",
                                             "similarity greedy", "cost-aware greedy")},
               "learned ranker": goal.learned_ranker}
    first = meta.configs.index(DEFAULT_CONFIG) if DEFAULT_CONFIG in meta.configs else 0
    figures = goal.goal_figures(meta, methods, args.budget, args.repetitions,
                                min(args.permutations, 200), default=first)
    lines = ["", f"## Goal figures: {args.repetitions} repetitions, B = {args.budget:g} s of "
             f"recorded trial time", "",
             "Time to target: recorded seconds until the method's best so far reaches what a "
             "random order reaches on average within B, over B (median over held-out "
             "datasets of the median over repetitions; above 1: not reached within B). "
             "best@3 >= cold: share of (dataset, repetition) pairs whose best of the first "
             "three trials is at least a cold search's (the default first, then random). "
             "Each repetition learns from a random 80% of the allowed datasets; "
             "leave-one-domain-out allows only datasets of other domains.", ""]
    rows = []
    for name in methods:
        cells = [name]
        for protocol in ("leave-one-dataset-out", "leave-one-domain-out"):
            f = figures[protocol][name]
            cells += [f"{f['time_median']:.2f}", f"{f['best3_share']:.0%}"]
        rows.append(cells)
    lines += harness.table(["method", "time to target / B (dataset out)", "best@3 >= cold",
                            "time to target / B (domain out)", "best@3 >= cold"], rows)
    chosen = figures["leave-one-domain-out"][CHOSEN]
    lines += ["", f"Goal (leave-one-domain-out, {CHOSEN}, the product's warm start): time to "
              f"target at most 0.25 B: {chosen['time_median']:.2f} B, "
              f"{'met' if chosen['time_median'] <= 0.25 else 'not met'}; best@3 at least "
              f"cold's in 80% of pairs: {chosen['best3_share']:.0%}, "
              f"{'met' if chosen['best3_share'] >= 0.8 else 'not met'}."]
    curve = goal.kb_size_times(meta, rm.ORDERED[CHOSEN], args.budget, args.subsets,
                               min(args.permutations, 200))
    plot = args.out / "transfer_replay_kb_size.png"
    goal.plot_kb_size(curve, plot, CHOSEN)
    lines += ["", f"## Knowledge-base size: time to target / B ({CHOSEN}, leave-one-dataset-"
              f"out, {args.subsets} random KB subsets per size)", "",
              f"![KB-size curve]({plot.name})", ""]
    lines += harness.table(["datasets in the KB", "median", "mean"],
                           [[m, f"{med:.2f}", f"{mean:.2f}"] for m, med, mean in curve])
    return lines


def agree_of_nearest(meta: rm.Meta, i: int) -> float:
    from scipy.stats import spearmanr

    d = rm.distances(meta.embeddings, meta.embeddings[i])
    d[i] = np.inf
    rho = spearmanr(meta.scores[i], meta.scores[int(np.argmin(d))]).statistic
    return 0.0 if np.isnan(rho) else float(rho)


def write_synthetic(folder: Path, n_per_family: int = 4, n_configs: int = 12,
                    seed: int = 0) -> tuple[Path, Path]:
    """A meta-dataset with a planted structure: two families of datasets, near each other in
    embedding, each preferring its own configurations; configurations differ in cost."""
    from transfer_automl.portfolio import portfolio

    rng = np.random.default_rng(seed)
    ids = [e.config_id for e in portfolio()][:n_configs]  # real ids: every method applies
    folder.mkdir(parents=True, exist_ok=True)
    centres = rng.normal(size=(2, 8)) * 3
    taste = rng.normal(size=(2, n_configs)) * 0.08
    cost = rng.uniform(2, 60, n_configs)
    lines, vectors = [], {}
    for family in range(2):
        for j in range(n_per_family):
            name = f"family{family}_{j}"
            vectors[name] = list(centres[family] + rng.normal(size=8) * 0.3)
            base = rng.uniform(0.6, 0.8)
            for c in range(n_configs):
                score = float(np.clip(base + taste[family, c] + rng.normal() * 0.01, 0, 1))
                lines.append(json.dumps({"dataset": name, "config_id": ids[c],
                                         "state": "complete", "score": score,
                                         "wall_s": float(cost[c] * rng.uniform(0.8, 1.2))}))
    rows, emb = folder / "rows.jsonl", folder / "embeddings.json"
    rows.write_text("\n".join(lines) + "\n")
    emb.write_text(json.dumps({k: [float(x) for x in v] for k, v in vectors.items()}))
    return rows, emb
