"""One entry point for the searches the suites run, whichever form ``fit_auto`` takes.

``fit_auto`` is moving from keyword arguments to frozen option objects (``SearchOptions``,
``DataOptions``, ``TrackingOptions``; a resume through ``api.resume``). Suites call
:func:`search` with the settings by name; it passes them the way the installed API takes
them, so the suites stay as they are across the change. Once the option objects are the only
API, the keyword branch can go.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

# what every API form takes directly
_DIRECT = {"max_trials", "time_budget_s", "executor", "kb", "seed", "cache_dir"}


def search(dataset: Any, *, resume: str | None = None, **settings: Any):
    """Run ``fit_auto(dataset, **settings)`` (or resume run ``resume``); its ``FitResult``.

    Raises:
        TypeError: if a setting is known to neither API form.
    """
    from transfer_automl import api

    if "search" not in inspect.signature(api.fit_auto).parameters:  # keyword form
        return api.fit_auto(dataset, resume=resume, **settings)
    from transfer_automl import options

    direct = {k: v for k, v in settings.items() if k in _DIRECT}
    groups = {"search": options.SearchOptions, "data": options.DataOptions,
              "tracking": options.TrackingOptions}
    left = set(settings) - set(direct)
    for name, kind in groups.items():
        names = {f.name for f in dataclasses.fields(kind)} & left
        if names:
            direct[name] = kind(**{k: settings[k] for k in names})
            left -= names
    if left:
        raise TypeError(f"search: settings {sorted(left)} are not fit_auto options")
    if resume is not None:
        keep = {k: direct[k] for k in ("executor", "kb", "cache_dir", "tracking") if k in direct}
        return api.resume(resume, **keep)
    return api.fit_auto(dataset, **direct)
