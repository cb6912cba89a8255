"""Typed experiment configs loaded from YAML, with `${VAR}` expansion and overrides.

`${AUTOCODE_SHARED_DATA}` defaults to `../shared/data` so configs can name
the shared corpus without hard-coding a machine's paths.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_DEFAULTS = {"AUTOCODE_SHARED_DATA": "../shared/data"}
_VARIABLE = re.compile(r"\$\{(\w+)\}")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(StrictModel):
    source: str
    format: Literal["auto", "table", "codiesp", "mimic3", "mimic4"] = "auto"
    language: Literal["en", "es"] = "en"
    id_col: str = "note_id"
    text_col: str = "text"
    codes_col: str = "codes"
    system: str | None = None
    systems: list[str] | None = Field(
        default=None, description="Keep only codes of these systems (e.g. [ICD10CM])."
    )
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    train_splits: list[str] = ["train"]
    validation_splits: list[str] = Field(
        default=["validation"], description="Empty: cross-fit on the training notes instead."
    )
    test_splits: list[str] = ["test"]
    max_text_chars: int = 1_000_000


class LabelConfig(StrictModel):
    min_count: int = Field(default=1, ge=1)


class ModelConfig(StrictModel):
    name: str = "tfidf"
    params: dict[str, Any] = {}


class CalibrationConfig(StrictModel):
    method: Literal["none", "platt", "isotonic"] = "platt"


class ThresholdConfig(StrictModel):
    shrinkage: float = Field(default=10.0, ge=0)


class RoutingConfig(StrictModel):
    target_precision: float = Field(default=0.95, gt=0, le=1)
    target_recall: float = Field(default=0.95, gt=0, le=1)
    min_support: int = Field(default=20, ge=1)
    # A note lists at most this many uncertain codes for review (its most probable).
    max_review_codes: int | None = Field(default=30, ge=1)


class TrackingConfig(StrictModel):
    experiment: str | None = None
    registered_model: str | None = None
    log_model: bool = True


class TrainConfig(StrictModel):
    name: str
    seed: int = 0
    crossfit_folds: int = Field(default=5, ge=2)
    data: DataConfig
    labels: LabelConfig = LabelConfig()
    model: ModelConfig = ModelConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    thresholds: ThresholdConfig = ThresholdConfig()
    routing: RoutingConfig = RoutingConfig()
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("name")
    @classmethod
    def _name_is_a_registry_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", value):
            raise ValueError(f"name {value!r}: use letters, digits, '.', '_' or '-'")
        return value

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    @property
    def registered_model_name(self) -> str:
        return self.tracking.registered_model or self.name


def load_config(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read YAML, expand `${VAR}`, apply `key.sub=value` overrides, validate."""
    raw = yaml.safe_load(expand_variables(path.read_text(encoding="utf-8"))) or {}
    for override in overrides or []:
        apply_override(raw, override)
    return TrainConfig.model_validate(raw)


def expand_variables(text: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in os.environ:
            return os.environ[name]
        if name in ENV_DEFAULTS:
            return ENV_DEFAULTS[name]
        raise ValueError(f"config uses ${{{name}}} but it is not set")

    return _VARIABLE.sub(value, text)


def apply_override(raw: dict[str, Any], override: str) -> None:
    """`model.params.epochs=10` sets a nested key; the value is parsed as YAML."""
    key, separator, value = override.partition("=")
    if not separator or not key:
        raise ValueError(f"override {override!r}: expected key=value")
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"override {override!r}: {part!r} is not a section")
        node = child
    node[leaf] = yaml.safe_load(value)


def flatten(config: BaseModel) -> dict[str, str]:
    """Dotted parameter names for MLflow (`model.params.epochs` → `5`)."""
    return {key: str(value) for key, value in dotted(config.model_dump(mode="json")).items()}


def dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The leaves of nested dicts under dotted keys: {"a": {"b": 1}} → {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(dotted(value, name))
        else:
            flat[name] = value
    return flat
