"""Functions run in child processes (spawned) by the concurrency tests."""

from __future__ import annotations


def trial_payload(worker: int, i: int) -> dict:
    """The record worker ``worker`` writes as its ``i``-th trial (checked back by the parent)."""
    return {"trial_id": f"w{worker}-t{i:04d}", "number": i,
            "config": {"lr": 10 ** -(1 + i % 4), "units": i, "worker": worker},
            "status": "complete", "score": (i % 97) / 97.0, "best_epoch": 1 + i % 5,
            "metrics": [{"epoch": e, "val_accuracy": e / 10.0, "pad": "x" * 200}
                        for e in range(1, 6)],
            "reason": "", "cost": float(i), "fidelity": "features", "origin": "tpe"}


def write_trials(url: str, worker: int, n: int, barrier) -> None:
    """Race the other worker: open (and migrate) the KB, add the same dataset, write n trials,
    each first as running and then as complete."""
    from knowledge_base import KnowledgeBase

    barrier.wait()
    with KnowledgeBase(url) as kb:
        ds = kb.add_dataset("shared", "fp-shared", [1.0, 2.0, 3.0])
        run_id = f"run-{worker}"
        kb.start_run(run_id, ds, {"worker": worker})
        for i in range(n):
            record = trial_payload(worker, i)
            kb.record_trial(run_id, {"trial_id": record["trial_id"], "number": i,
                                     "config": record["config"], "status": "running"})
            kb.record_trial(run_id, record)
        kb.finish_run(run_id, "complete", f"w{worker}-t0000")


def write_until_killed(url: str, acks) -> None:
    """Write trials forever, acknowledging each one after its transaction committed."""
    from knowledge_base import KnowledgeBase

    kb = KnowledgeBase(url)
    ds = kb.add_dataset("victim", "fp-victim", [0.5, 0.5])
    kb.start_run("doomed", ds, {})
    acks.put(-1)
    for i in range(100_000):
        kb.record_trial("doomed", trial_payload(0, i))
        acks.put(i)
