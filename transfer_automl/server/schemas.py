"""Request bodies of the API (the OpenAPI spec is generated from them)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from transfer_automl.server.config import JobDefaults


class JobRequest(BaseModel):
    """Start a search on an uploaded dataset; left-out parameters take the server's defaults."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(min_length=1, max_length=32, description="id from POST /api/datasets")
    max_trials: Optional[int] = Field(None, ge=1, le=1000, description="trials to run at most")
    time_budget_s: Optional[float] = Field(None, gt=0, le=7 * 86400,
                                           description="search budget in seconds")
    # The Spark master is the server's setting (--spark-master): users do not choose hosts.
    executor: Optional[Literal["local", "spark"]] = None
    seed: Optional[int] = Field(None, ge=0, le=2**31 - 1)
    n_parallel: Optional[int] = Field(None, ge=1, le=16,
                                      description="concurrent trials (local executor)")
    space: Optional[Literal["default", "demo", "quick"]] = Field(
        None, description="search space: default (all backbones), demo (Lite0 at 128-160 px), "
                          "quick (frozen-backbone heads at 128 px)")
    cv_folds: Optional[int] = Field(None, ge=0, le=10,
                                    description="cross-validation folds of head trials on "
                                                "small datasets; 0 uses the validation split")
    use_kb: bool = Field(True, description="warm-start from and feed the knowledge base "
                                           "(if the server has one)")

    def fit_params(self, defaults: JobDefaults) -> dict[str, Any]:
        """The complete fit parameters of the job."""
        given = self.model_dump(exclude={"dataset_id", "use_kb"}, exclude_none=True)
        return {**asdict(defaults), **given, "use_kb": self.use_kb}


class TuneBody(BaseModel):
    """A live change of a running trial, applied at its next epoch boundary (or a stop)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: Optional[float] = Field(None, gt=0, le=10, description="new learning rate")
    momentum: Optional[float] = Field(None, ge=0, lt=1, description="new SGD momentum")
    weight_decay: Optional[float] = Field(None, ge=0, le=1, description="new weight decay")
    epochs_left: Optional[int] = Field(None, ge=1, le=1000,
                                       description="epochs to run from the change on")
    stop: bool = Field(False, description="stop the trial after its current epoch instead")
