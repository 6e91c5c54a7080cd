"""``transfer-automl history`` and ``restore``: look back at a run, and go back to a trial."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.tree import Tree

from transfer_automl.cli import display
from transfer_automl.cli.common import CacheDir, cache_root as _cache

console = display.console

RunId = Annotated[str, typer.Argument(help="Id of the run (printed at the end of `fit`).")]


def history(run_id: RunId, out: Annotated[Optional[Path], typer.Option(
                "--out", help="Folder for the pictures (default RUN_DIR/history).")] = None,
            cache_dir: CacheDir = None) -> None:
    """Show a run's trial lineage; write it as a picture, with other plots.

    Writes tree.png and tree.svg (the lineage), curves.png (learning curves),
    best_so_far.png (against trials and time) and importance.png (hyperparameters).
    """
    from transfer_automl.history import ROOT, write_history
    from transfer_automl.run import find_run

    files = find_run(_cache(cache_dir) / "runs", run_id, "history")
    run_history, paths = write_history(files, out)
    nodes = run_history.tree()
    colours = {"complete": "green", "pruned": "yellow", "failed": "red"}

    def add(branch: Tree, key: str) -> None:
        for child in nodes[key].children:
            node = nodes[child]
            if node.kind == "prior":
                label = f"[magenta]{node.label}[/]"
            elif node.kind == "tuning":
                label = f"[cyan]live change at {node.label.replace(chr(10), ': ')}[/]"
            else:
                colour = colours.get(node.state, "white")
                label = f"[{colour}]{node.label.replace(chr(10), '  ')}[/] {node.state}"
            add(branch.add(label), child)

    root = Tree(f"[bold]{nodes[ROOT].label}[/]")
    add(root, ROOT)
    console.print(root)
    weights = run_history.importance()
    if weights:
        console.print("hyperparameter importance: " + ", ".join(
            f"{name} {share:.2f}" for name, share in list(weights.items())[:5]))
    for path in paths:
        console.print(f"wrote {path}")


def tune(run_id: RunId,
         trial_id: Annotated[str, typer.Argument(help="A running trial, e.g. t003.")],
         learning_rate: Annotated[Optional[float], typer.Option(
             "--lr", min=0.0, help="New learning rate (of the head; the unfrozen blocks keep "
                                   "their multiplier).")] = None,
         momentum: Annotated[Optional[float], typer.Option(
             "--momentum", min=0.0, max=1.0, help="New SGD momentum.")] = None,
         weight_decay: Annotated[Optional[float], typer.Option(
             "--weight-decay", min=0.0, help="New weight decay (SGD, AdamW).")] = None,
         epochs: Annotated[Optional[int], typer.Option(
             "--epochs", min=1, help="Epochs to run from the change on.")] = None,
         stop: Annotated[bool, typer.Option(
             "--stop", help="Stop the trial after its current epoch (keeps its best epoch).")]
         = False,
         wait: Annotated[float, typer.Option(
             "--wait", min=0.0, help="Seconds to wait for the trial to apply it.")] = 60.0,
         cache_dir: CacheDir = None) -> None:
    """Change a trial of a running search from its next epoch on (or stop it).

    The change is applied at the trial's next epoch boundary, recorded with the trial and
    shown as a branch of its lineage by 'transfer-automl history'; 'restore RUN TRIAL
    --before-tuning N' goes back to the state before it.
    """
    from transfer_automl.restore import tune as tune_trial

    if stop and any(v is not None for v in (learning_rate, momentum, weight_decay, epochs)):
        raise typer.BadParameter("--stop does not go with changes", param_hint="--stop")
    with console.status(f"sending the change to {trial_id} of run {run_id}"):
        answer = tune_trial(run_id, trial_id, learning_rate=learning_rate, momentum=momentum,
                            weight_decay=weight_decay, epochs_left=epochs, stop=stop,
                            cache_dir=_cache(cache_dir), wait_s=wait)
    console.print(f"{trial_id}: {answer['status']}: {answer['detail']}", highlight=False)
    if answer["status"] in ("rejected", "not applied", "waiting"):
        raise typer.Exit(1)


def restore(run_id: RunId,
            trial_id: Annotated[str, typer.Argument(help="Trial to go back to, e.g. t003.")],
            export: Annotated[Optional[Path], typer.Option(
                "--export", help="Write the trial's model here (SavedModel + labels).")] = None,
            before_tuning: Annotated[Optional[int], typer.Option(
                "--before-tuning", min=1, help="Go back to the state just before the trial's "
                                               "N-th live change ('tune').")] = None,
            learning_rate: Annotated[Optional[float], typer.Option(
                "--lr", help="Retune: continue training with this learning rate.")] = None,
            momentum: Annotated[Optional[float], typer.Option(
                "--momentum", help="Retune: SGD momentum.")] = None,
            weight_decay: Annotated[Optional[float], typer.Option(
                "--weight-decay", help="Retune: weight decay.")] = None,
            unfrozen_blocks: Annotated[Optional[int], typer.Option(
                "--unfreeze", min=0, help="Retune: train this many top backbone blocks.")] = None,
            optimizer: Annotated[Optional[str], typer.Option(
                "--optimizer", help="Retune: adam, adamw or sgd.")] = None,
            epochs: Annotated[Optional[int], typer.Option(
                "--epochs", min=1, help="Retune: epochs to continue for.")] = None,
            cache_dir: CacheDir = None,
            kb: Annotated[Optional[str], typer.Option(
                "--kb", help="Knowledge base to record a retune in (default CACHE/kb.sqlite).")]
            = None,
            no_kb: Annotated[bool, typer.Option("--no-kb", help="Do not record it.")] = False
            ) -> None:
    """Reload a trial's checkpoint, export it, or retune it.

    With any retune option the trial's training continues from its checkpoint as a child
    trial of the same run, recorded with its parent.
    """
    from transfer_automl.restore import restore as restore_trial
    from transfer_automl.restore import retune

    cache = _cache(cache_dir)
    changes = {k: v for k, v in {"learning_rate": learning_rate, "momentum": momentum,
                                 "weight_decay": weight_decay, "unfrozen_blocks": unfrozen_blocks,
                                 "optimizer": optimizer, "epochs": epochs}.items()
               if v is not None}
    trial = restore_trial(run_id, trial_id, cache_dir=cache, before_tuning=before_tuning)
    _show(trial, "restored" if before_tuning is None
          else f"restored as before live change {before_tuning}")
    if changes:
        if trial.spec.config["optimizer"] == "lbfgs" and "optimizer" not in changes:
            changes["optimizer"] = "adam"  # continuing an exact solution means gradient steps
        status = console.status(f"retuning {trial_id} with {changes}")
        status.start()
        try:
            trial = retune(run_id, trial_id, cache_dir=cache, kb=False if no_kb else kb,
                           on_epoch=lambda m: status.update(
                               f"retuning {trial_id}: epoch {m.epoch} val_acc "
                               f"{m.val_accuracy:.4f}"), **changes)
        finally:
            status.stop()
        _show(trial, f"child of {trial_id}")
    if export is not None:
        trial.export(export)
        console.print(f"model of {trial.spec.trial_id} exported to {export}")


def _show(trial, what: str) -> None:
    result = trial.result
    score = f"{result.score:.4f}" if result.score is not None else "-"
    first = (f", first epoch {result.history[0].val_accuracy:.4f}"
             if result.history else "")
    reason = f" ({result.reason})" if result.reason else ""
    console.print(f"{trial.spec.trial_id} ({what}): {result.state.value}{reason}, val_acc "
                  f"{score}{first}; {display.describe(dict(trial.spec.config))}")
