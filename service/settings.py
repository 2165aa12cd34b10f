"""The service's settings: inference, API and publishing on the shared base, and `Settings`,
all of them, for the API and the all-in-one demo.

Each deployable reads its own class (`InferenceSettings`,
`service.publish.settings.PublishSettings`, `ingest.settings.IngestSettings`);
`get_settings` reads `Settings` and refuses an unknown ``NOWCAST_*`` variable, as the
command line does before any verb runs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from core.settings import CoreSettings, unknown_env_settings
from ingest.settings import IngestSettings
from service.publish.settings import PublishSettings


class InferenceSettings(CoreSettings):
    """The inference worker's: which methods, which checkpoints, how it batches and catches up."""

    checkpoints: dict[str, Path] = Field(
        default_factory=dict,
        description='Checkpoint per learned method, e.g. {"convlstm": "/models/c.safetensors"};'
        " a method not named: the one shipped, model/checkpoints/NAME.safetensors.",
    )
    methods: tuple[str, ...] = Field(
        default=(
            "convlstm",
            "extrapolation",
            "extrapolation-inflow",
            "sprog",
            "steps",
            "persistence",
        ),
        description="Nowcast methods the inference worker runs for every issue time.",
    )
    infer_batch_max: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=32,
        description="Most frame events a worker takes at once; the sites ready among them "
        "run as one batch.",
    )
    infer_claim_idle_ms: Annotated[int, Field(ge=1000)] = Field(
        default=60_000,
        description="A frame event pending this long (ms) with another worker, taken for dead, "
        "is claimed.",
    )
    infer_max_behind_min: float = Field(
        default=60.0,
        ge=0,
        description="An issue time older than the site's newest frame by more than this is "
        "skipped (reason 'behind'): a worker that fell behind catches up, newest first. An "
        "hour keeps every issue time through a short outage; a nowcast issued an hour late "
        "still covers 30 minutes ahead.",
    )
    infer_device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Device of the learned networks; auto: CUDA when torch sees one, else CPU.",
    )
    infer_bf16: bool = Field(
        default=False,
        description="Run the learned networks under bfloat16 autocast; false: fp32, the "
        "precision the model card's scores were computed in.",
    )
    steps_members: Annotated[int, Field(ge=2, le=200)] = Field(
        default=20, description="steps: ensemble members (the probabilities' resolution)."
    )
    steps_seed: int = Field(
        default=24, description="steps: random seed of the members (a rerun gives the same)."
    )
    steps_cascade_levels: Annotated[int | None, Field(ge=1, le=12)] = Field(
        default=None, description="steps: cascade levels; None: one per octave of the grid."
    )
    steps_ar_order: Annotated[int, Field(ge=1, le=3)] = Field(
        default=2, description="steps: order of the AR model of each cascade level."
    )
    steps_noise: Literal["nonparametric", "ssft", "nested"] = Field(
        default="nonparametric",
        description="steps: pysteps' noise generator of the members (the last frame's power "
        "spectrum; ssft and nested: local spectra, 1 and 3 times its cost).",
    )

    def method_options(self, name: str) -> dict[str, object]:
        """The keyword options the settings give method ``name`` (`model.methods.get_method`)."""
        if name == "convlstm-probability":
            checkpoint = self.checkpoints.get("convlstm")
            return {
                **({"checkpoint": checkpoint} if checkpoint else {}),
                "device": self.infer_device,
                "bf16": self.infer_bf16,
            }
        if name == "steps":
            return {
                "n_members": self.steps_members,
                "seed": self.steps_seed,
                "n_cascade_levels": self.steps_cascade_levels,
                "ar_order": self.steps_ar_order,
                "noise": self.steps_noise,
            }
        return {}

    @field_validator("methods")
    @classmethod
    def _methods_are_known(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        from model.methods import method_names  # the registry; imports neither torch nor pysteps

        unknown = [m for m in methods if m not in method_names()]
        if unknown or not methods:
            raise ValueError(
                f"methods {list(methods)}: unknown {unknown}; valid: {list(method_names())}"
            )
        return methods


class Settings(IngestSettings, InferenceSettings, PublishSettings):
    """Everything: the API's settings (it ingests uploads, serves every method's forecasts and
    the publishing state) and the all-in-one demo's."""

    api_keys: tuple[SecretStr, ...] = Field(
        default=(), description="Keys accepted on write routes (X-API-Key); none: writes refused."
    )
    http_header_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0,
        description="A connection whose request headers are not complete within this many "
        "seconds is closed (uvicorn waits forever: slow clients held file descriptors).",
    )
    http_body_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0,
        description="An uploaded frame whose body has not arrived whole within this many "
        "seconds is refused with 408.",
    )
    ready_max_ingest_age_s: Annotated[float, Field(gt=0)] = Field(
        default=3600.0,
        description="/readyz is not ready while no site has ingested a frame within this "
        "many seconds.",
    )

    @model_validator(mode="after")
    def _published_method_is_run(self) -> Settings:
        for subscriber in self.subscribers:
            if subscriber.method is not None and subscriber.method not in self.methods:
                raise ValueError(
                    f"subscriber {subscriber.name!r} asks for method {subscriber.method!r}, "
                    f"which the worker does not run {list(self.methods)}"
                )
        for site_id, site in self.sites.items():
            if site.default_method is not None and site.default_method not in self.methods:
                raise ValueError(
                    f"site {site_id!r} defaults to method {site.default_method!r}, which the "
                    f"worker does not run {list(self.methods)}"
                )
        if self.publish_method not in self.methods:
            raise ValueError(
                f"publish_method {self.publish_method!r} is not among the methods the worker "
                f"runs {list(self.methods)}"
            )
        return self


def check_environment() -> None:
    """ValueError naming every ``NOWCAST_*`` variable that is no setting (misspelled?)."""
    unknown = unknown_env_settings(Settings)
    if unknown:
        raise ValueError(f"unknown settings in the environment (misspelled?): {unknown}")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` or pass their own."""
    check_environment()
    return Settings()


@lru_cache
def get_inference_settings() -> InferenceSettings:
    check_environment()
    return InferenceSettings()
