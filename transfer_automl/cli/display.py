"""What the command line shows: live progress of a search and result tables."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from transfer_automl.diagnosis import COLOUR, diagnose_trial
from transfer_automl.space import fused_backbones
from transfer_automl.tracking import Tracker
from transfer_automl.tracking.console import clock, live_diagnosis

console = Console()
console.soft_wrap = not console.is_terminal  # a pipe or log file: paths are not wrapped


def describe(config: dict) -> str:
    """A compact one-line summary of a configuration."""
    n = config.get("n_dense", 0)
    head = "linear" if n == 0 else "mlp " + "-".join(str(config[f"units_{i}"])
                                                     for i in range(1, n + 1))
    fused = fused_backbones(config)
    base = "fused " + "+".join(fused) if fused else config.get("backbone", "")
    parts = [base.replace("efficientnet_", ""),
             f"{config.get('resolution')}px", config.get("pooling", ""), head,
             _training(config)]
    if config.get("unfrozen_blocks"):
        parts.append(f"unfreeze {config['unfrozen_blocks']}")
    if config.get("augment"):
        parts.append(f"aug {config['augment']:g}")
    return " ".join(p for p in parts if p)


def _training(config: dict) -> str:
    if config.get("optimizer") == "lbfgs":
        return f"exact l2={config.get('weight_decay', 0):.0e}"
    return f"{config.get('optimizer')} lr={config.get('learning_rate', 0):.1e}"


class Progress(Tracker):
    """Prints each trial's start and end with trial n/N, best so far, elapsed time, the
    budget left and an ETA; epochs update one status line in place."""

    def __init__(self, max_trials: int | None, time_budget_s: float | None = None) -> None:
        self.max_trials, self.time_budget_s = max_trials, time_budget_s
        self.status = console.status("starting", spinner="dots")
        self.status.start()
        self.started = time.monotonic()
        self._verdicts: dict = {}  # trial id -> the last diagnosis shown for it

    def on_planned(self, event) -> None:
        console.print(event.message)

    def _head(self, event) -> tuple[str, str]:
        best = event.study.best()
        best_text = f"{best.result.score:.4f}" if best else "-"
        return clock(event, self.max_trials, self.time_budget_s), best_text

    def on_trial_started(self, event) -> None:
        record, (head, _) = event.trial, self._head(event)
        console.print(f"{head} {record.spec.trial_id} started ({record.spec.origin}): "
                      f"{describe(record.spec.config)}")
        self.status.update(f"{head} {record.spec.trial_id} starting")

    def on_epoch(self, event) -> None:
        record, (head, best_text) = event.trial, self._head(event)
        e = record.epochs[-1]
        self._monitor(event, head)
        config = record.spec.config
        total = 1 if config.get("optimizer") == "lbfgs" else config["epochs"]  # solved at once
        self.status.update(f"{head} {record.spec.trial_id} epoch {e.epoch}/{total} "
                           f"val_acc {e.val_accuracy:.4f} | best so far {best_text}")

    def _monitor(self, event, head: str) -> None:
        """A line when a running trial's diagnosis changes: its traffic light, the advice,
        and a stop suggestion with the command that accepts it."""
        changed = live_diagnosis(event, self._verdicts)
        if changed is None:
            return
        verdict, suggestion = changed
        console.print(f"{head} {event.trial.spec.trial_id} epoch {event.trial.epochs[-1].epoch}: "
                      f"[{verdict.colour}]●[/] {verdict}"
                      + (f" | suggest: {suggestion}" if suggestion else ""), highlight=False)

    def on_trial_finished(self, event) -> None:
        record, (head, best_text) = event.trial, self._head(event)
        tid = record.spec.trial_id
        res = record.result
        score = f"{res.score:.4f}" if res.score is not None else "-"
        why = f" ({res.reason})" if res.reason else ""
        colour = {"complete": "green", "pruned": "yellow"}.get(res.state.value, "red")
        verdict = diagnose_trial(record.spec.config, record.epochs)
        console.print(f"{head} {tid} [{colour}]{res.state.value}[/]{why}: val_acc {score} "
                      f"in {res.seconds:.1f}s | [{verdict.colour}]{verdict.verdict.value}[/]"
                      f" | best so far {best_text}")

    def close(self, status: str = "complete", result=None) -> None:
        self.status.stop()


_VERDICT_COLOURS = {verdict.value: colour for verdict, colour in COLOUR.items()}


LEADERBOARD_COLUMNS = ("trial", "status", "val_acc", "epochs", "cost_s", "fidelity", "origin",
                       "diagnosis", "configuration")


def leaderboard_lines(rows: list[dict]) -> list[str]:
    """The leaderboard as tab-separated lines, one per trial under a header: for output
    that is not a terminal (a pipe, a log file), where a table would be squeezed into 80
    columns and wrapped."""
    lines = ["\t".join(LEADERBOARD_COLUMNS)]
    for row in rows:
        score = f"{row['score']:.4f}" if row["score"] is not None else "-"
        cost = f"{row['cost_s']:.1f}" if row["cost_s"] is not None else "-"
        detail = _detail(row)
        cells = (row["trial"], row["status"], score, str(row["epochs_run"]), cost,
                 row["fidelity"], row["origin"], row.get("diagnosis", ""), detail)
        lines.append("\t".join(str(c).replace("\t", " ").replace("\n", " ") for c in cells))
    return lines


def _detail(row: dict) -> str:
    """A row's configuration and reason; an ensemble's members and weights."""
    if row.get("detail"):
        return row["detail"]
    return describe(row["config"]) + (f" [{row['reason']}]" if row["reason"] else "")


def print_leaderboard(rows: list[dict]) -> None:
    """A table on a terminal, one plain line per trial anywhere else."""
    if console.is_terminal:
        console.print(leaderboard(rows))
    else:
        for line in leaderboard_lines(rows):
            print(line)


def leaderboard(rows: list[dict]) -> Table:
    """The final leaderboard: one row per trial, best first."""
    table = Table(title="Leaderboard")
    for col in ("trial", "status", "val acc", "epochs", "cost s", "fidelity", "origin"):
        table.add_column(col, no_wrap=True)
    table.add_column("diagnosis", overflow="fold")
    table.add_column("configuration / reason", overflow="fold", ratio=1)
    for row in rows:
        score = f"{row['score']:.4f}" if row["score"] is not None else "-"
        cost = f"{row['cost_s']:.1f}" if row["cost_s"] is not None else "-"
        detail = _detail(row)
        verdict = row.get("diagnosis", "")
        colour = _VERDICT_COLOURS.get(verdict.split(":")[0], "white")
        table.add_row(row["trial"], row["status"], score, str(row["epochs_run"]), cost,
                      row["fidelity"], row["origin"].replace("tpe/", ""),
                      f"[{colour}]{verdict}[/]", detail)
    return table
