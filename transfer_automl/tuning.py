"""Live tuning: changing a running trial's optimizer settings from outside the search.

A request (new learning rate, momentum, weight decay, or how many epochs are left; or a stop)
is a JSON file in the run's ``control/`` folder, so any process that can write the run
directory can send one: the Python API (:func:`transfer_automl.restore.tune`), the command line
(``transfer-automl tune RUN TRIAL --lr ...``) and the upload server. The search's driver takes
requests between polls of its executor, forwards them to the trial, and answers each in
``control/answers/``: sent, applied (with the epoch from which the change holds), or rejected
with the reason. The trial applies changes at its next epoch boundary (see
``training._tuning``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError

__all__ = ["TUNABLE", "TuneRequest", "ControlInbox", "check_changes", "send", "answer_of",
           "wait_for_answer"]

#: What a running trial accepts: learning rate, momentum (SGD's; Adam's first-moment decay),
#: weight decay (AdamW's and SGD's decoupled decay), and epochs still to run from the change.
TUNABLE = ("learning_rate", "momentum", "weight_decay", "epochs_left")

CONTROL_DIR = "control"
_TAKEN, _ANSWERS = "taken", "answers"


def check_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validated changes (unknown names and out-of-range values raise :class:`InputError`)."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name not in TUNABLE:
            raise InputError(f"{name}: a running trial accepts {', '.join(TUNABLE)}")
        if name == "epochs_left":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"epochs_left: expected an integer >= 1, got {value!r}")
            out[name] = value
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name}: expected a number, got {value!r}") from None
        bounds = {"learning_rate": (0.0, 10.0), "momentum": (0.0, 0.999999),
                  "weight_decay": (0.0, 1.0)}[name]
        low_open = name == "learning_rate"
        if not (bounds[0] < number if low_open else bounds[0] <= number) or number > bounds[1]:
            raise InputError(f"{name}: expected a value in "
                             f"{'(' if low_open else '['}{bounds[0]:g}, {bounds[1]:g}], "
                             f"got {value!r}")
        out[name] = number
    return out


@dataclass(frozen=True)
class TuneRequest:
    """One request: ``changes`` for trial ``trial_id``, or ``stop`` (the reason) to stop it."""

    request_id: str
    trial_id: str
    changes: Mapping[str, Any]
    stop: str | None = None


def send(run_dir: str | os.PathLike, trial_id: str, changes: Mapping[str, Any] | None = None,
         stop: str | None = None) -> str:
    """Write a request for the search running in ``run_dir``; returns its id."""
    if not isinstance(trial_id, str) or not trial_id:
        raise InputError(f"trial: expected a trial id such as 't003', got {trial_id!r}")
    checked = check_changes(changes or {})
    if not checked and not stop:
        raise InputError("nothing to change: give a learning rate, momentum, weight decay, "
                         "epochs left, or a stop")
    folder = Path(run_dir) / CONTROL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    # sorts in the order sent (nanoseconds), and two senders never collide (the random part)
    request_id = f"{time.time_ns():020d}-{secrets.token_hex(3)}"
    data = {"request_id": request_id, "trial_id": trial_id, "changes": checked,
            "stop": stop or None, "sent": time.time()}
    tmp = folder / f".{request_id}.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(folder / f"{request_id}.json")  # atomic: the driver never reads half a file
    return request_id


def answer_of(run_dir: str | os.PathLike, request_id: str) -> dict[str, Any] | None:
    """The driver's latest answer to a request (``status``, ``detail``, ``epoch``), if any."""
    path = Path(run_dir) / CONTROL_DIR / _ANSWERS / f"{request_id}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wait_for_answer(run_dir: str | os.PathLike, request_id: str, timeout_s: float,
                    until: tuple[str, ...] = ("applied", "rejected", "stopping",
                                              "not applied")) -> dict[str, Any] | None:
    """Wait up to ``timeout_s`` for an answer whose status is in ``until``; return the last
    answer seen (None if the driver never took the request)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = answer_of(run_dir, request_id) or last
        if (last and last["status"] in until) or time.monotonic() >= deadline:
            return last
        time.sleep(0.2)


class ControlInbox:
    """The driver's side: take new requests, write answers."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.folder = Path(run_dir) / CONTROL_DIR

    def take(self) -> list[TuneRequest]:
        """New requests, oldest first; each is taken once (moved to ``control/taken``)."""
        if not self.folder.is_dir():
            return []
        requests = []
        for path in sorted(self.folder.glob("*.json")):
            taken = self.folder / _TAKEN / path.name
            taken.parent.mkdir(exist_ok=True)
            try:
                path.replace(taken)
                data = json.loads(taken.read_text())
                requests.append(TuneRequest(str(data["request_id"]), str(data["trial_id"]),
                                            check_changes(data.get("changes") or {}),
                                            data.get("stop") or None))
            except (OSError, ValueError, KeyError, InputError) as exc:
                self.answer(path.stem, "rejected", f"unreadable request: {exc}")
        return requests

    def answer(self, request_id: str, status: str, detail: str = "",
               epoch: int | None = None) -> None:
        folder = self.folder / _ANSWERS
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{request_id}.tmp"
        tmp.write_text(json.dumps({"request_id": request_id, "status": status,
                                   "detail": detail, "epoch": epoch, "time": time.time()}))
        tmp.replace(folder / f"{request_id}.json")
