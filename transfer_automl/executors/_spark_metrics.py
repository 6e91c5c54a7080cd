"""Live metrics between Spark tasks and the driver: a small TCP server and the task's reporter.

Each running trial opens one connection to the driver and sends one JSON line per epoch; the
driver answers each line with whether it wants the trial stopped. JSON (not pickle) because the
server listens on the network; a per-run token keeps other clients out.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable

from transfer_automl.errors import InputError, TrialPruned, TrialSuperseded
from transfer_automl.trial import EpochMetrics

log = logging.getLogger(__name__)

# Called with each arriving epoch and the attempt that sent it, as (the executor's attempt,
# Spark's attempt of that task), 0 where not said; returns the reason to stop the trial, or
# None to go on.
# The answer may also be a dict {"stop": reason or None, "tune": changes or None}.
MetricsHandler = Callable[[EpochMetrics, "tuple[int, int]"], "str | dict | None"]
# Called when a trial asks for changes between reports (trial id, attempt); answers likewise.
PollHandler = Callable[[str, "tuple[int, int]"], "str | dict | None"]

#: Environment variable fixing the driver's metrics port (for firewalls between nodes).
PORT_VARIABLE = "TRANSFER_AUTOML_METRICS_PORT"


def metrics_port(port: int | None = None) -> int:
    """The port the metrics server listens on: ``port``, else ``$TRANSFER_AUTOML_METRICS_PORT``,
    else 0 (any free port)."""
    value = port if port is not None else os.environ.get(PORT_VARIABLE, "0")
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number <= 65535:
        raise InputError(f"metrics port: expected an integer from 0 to 65535 "
                         f"({PORT_VARIABLE} or metrics_port), got {value!r}")
    return number

_MAX_LINE = 64 * 1024


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        while True:
            line = self.rfile.readline(_MAX_LINE)
            if not line:
                return
            try:
                message = json.loads(line)
                if not hmac.compare_digest(str(message.get("token", "")), server.token):
                    log.warning("metrics: dropped a connection with a wrong token")
                    return
                attempt = (int(message.get("attempt", 0)), int(message.get("task_attempt", 0)))
                if "poll" in message:
                    trial_id, metrics = str(message["poll"]), None
                else:
                    metrics = EpochMetrics(**message["metrics"])
                    trial_id = metrics.trial_id
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("metrics: dropped a malformed message (%s)", exc)
                return
            try:
                reply = (server.on_metrics(metrics, attempt) if metrics is not None
                         else server.on_poll(trial_id, attempt))
            except Exception:  # a bug in the handler must not hang the trial
                log.exception("metrics handler failed")
                reply = None
            if not isinstance(reply, dict):
                reply = {"stop": reply}
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, token: str, on_metrics: MetricsHandler,
                 on_poll: PollHandler | None = None) -> None:
        self.token = token
        self.on_metrics = on_metrics
        self.on_poll = on_poll or (lambda trial_id, attempt: None)
        super().__init__(address, _Handler)


class MetricsServer:
    """Receives epoch metrics from trials on any host and answers with stop requests.

    Args:
        advertised_host: the host name or address tasks connect to (the driver's).
        token: shared secret every message must carry.
        on_metrics: called on each epoch (from a server thread); returns a stop reason or None.
        bind_host: interface to listen on ("" = all, so executors on other machines reach it).
        port: port to listen on (0: any free one).
        on_poll: called when a trial asks for live changes without sending metrics.
    """

    def __init__(self, advertised_host: str, token: str, on_metrics: MetricsHandler,
                 bind_host: str = "", port: int = 0, on_poll: PollHandler | None = None) -> None:
        try:
            self._server = _Server((bind_host, port), token, on_metrics, on_poll)
        except OSError as exc:
            raise InputError(f"metrics port {port}: cannot listen there ({exc})") from exc
        self.address = (advertised_host, self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="transfer-automl-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening. Idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


class SocketReporter:
    """The reporter a Spark task hands to the trial: sends epochs, raises when told to stop.

    Metrics are best effort: if the driver cannot be reached the trial goes on (its full
    history still returns with the result), it just cannot be stopped early.
    """

    def __init__(self, address: tuple[str, int], token: str, timeout_s: float = 30.0,
                 attempt: int = 0, task_attempt: int = 0) -> None:
        self.address = tuple(address)
        self.token = token
        self.attempt = attempt
        self.task_attempt = task_attempt
        self.trial_id: str | None = None
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._file = None

    def __call__(self, metrics: EpochMetrics) -> dict | None:
        self.trial_id = metrics.trial_id
        reply = self._exchange({"token": self.token, "attempt": self.attempt,
                                "task_attempt": self.task_attempt,
                                "metrics": dataclasses.asdict(metrics)})
        if reply and reply.get("stop"):
            reason = str(reply["stop"])
            if reason.startswith(TrialSuperseded.PREFIX):
                raise TrialSuperseded(reason)
            raise TrialPruned(reason)
        return (reply or {}).get("tune") or None

    def poll(self) -> dict | None:
        """Live changes waiting at the driver, asked for without sending metrics; a stop
        waits for the next epoch's report."""
        if self.trial_id is None:
            return None
        reply = self._exchange({"token": self.token, "attempt": self.attempt,
                                "task_attempt": self.task_attempt, "poll": self.trial_id})
        return (reply or {}).get("tune") or None

    def _exchange(self, message: dict) -> dict | None:
        for attempt in range(2):  # reconnect once if the connection went stale
            try:
                if self._sock is None:
                    self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
                    self._file = self._sock.makefile("rwb")
                self._file.write(json.dumps(message).encode() + b"\n")
                self._file.flush()
                line = self._file.readline(_MAX_LINE)
                if line:
                    return json.loads(line)
                raise ConnectionError("driver closed the metrics connection")
            except (OSError, ValueError) as exc:
                self.close()
                if attempt:
                    log.warning("metrics: cannot reach the driver at %s:%s (%s)",
                                *self.address, exc)
        return None

    def close(self) -> None:
        """Close the connection. Idempotent."""
        for thing in (self._file, self._sock):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass
        self._sock = self._file = None
