"""Typed experiment configs loaded from YAML, with `${VAR}` expansion and overrides.

`${AUTOCODE_SHARED_DATA}` defaults to `../shared/data` so configs can name
the shared corpus without hard-coding a machine's paths.
"""

from __future__ import annotations

import os
import re
import typing
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from autocode.codes.hcpcs import HCPCS_ZIP
from autocode.decisions.policy import ROUTING_DEFAULTS
from autocode.knowledge import CodeSources
from autocode.models import MODELS, PARAMS

SHARED_DATA = "AUTOCODE_SHARED_DATA"
ENV_DEFAULTS = {SHARED_DATA: "../shared/data"}
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
    reviewed: list[str] = Field(
        default=[],
        description="Reviewed notes (`autocode review export` files) added to training: a "
        "reviewer's codes replace a training note's; notes of held-out splits stay out.",
    )


class LabelConfig(StrictModel):
    min_count: int = Field(default=1, ge=1)


class ModelConfig(StrictModel):
    """`params` are the model's constructor arguments, checked by its params model."""

    name: str = "tfidf"
    params: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _name_is_registered(cls, value: str) -> str:
        if value not in MODELS:
            raise PydanticCustomError(
                "unknown_model",
                "unknown model '{name}'; valid: {valid}",
                {"name": value, "valid": ", ".join(sorted(MODELS))},
            )
        return value

    @model_validator(mode="after")
    def _params_fit_the_model(self) -> ModelConfig:
        try:
            checked = PARAMS[self.name].model_validate(self.params)
        except ValidationError as error:
            # Re-raised with each error's location under `params`, so that a bad key reads
            # `model.params.epoch`, as the config spells it.
            raise ValidationError.from_exception_data(
                "ModelConfig", [self._params_error(e) for e in error.errors()]
            ) from None
        # Only the keys the config set: the constructor stays the source of the defaults.
        self.params = checked.model_dump(exclude_unset=True)
        return self

    def _params_error(self, error: Any) -> InitErrorDetails:
        location = ("params", *error["loc"])
        if error["type"] == "extra_forbidden":
            valid = sorted(PARAMS[self.name].model_fields)
            if len(error["loc"]) > 1:  # a nested section, e.g. tfidf-lexicon's `tfidf`
                section = PARAMS[self.name].model_fields[str(error["loc"][0])]
                valid = sorted(_nested_fields(section.annotation))
            unknown = PydanticCustomError(
                "unknown_parameter",
                "not a parameter of model '{model}'; valid: {valid}",
                {"model": self.name, "valid": ", ".join(valid)},
            )
            return InitErrorDetails(type=unknown, loc=location, input=error["input"])
        return InitErrorDetails(
            type=error["type"], loc=location, input=error["input"], ctx=error.get("ctx", {})
        )


class MentionsConfig(StrictModel):
    """Terms mined from the annotated mentions of training notes (`knowledge.mined`)."""

    file: str = Field(
        description="CodiEsp-X file of the training split (train/trainX.tsv). Its mentions "
        "are Spanish; with data.language=en each is projected onto the note's English "
        "translation (knowledge.projection)."
    )
    min_notes: int = Field(
        default=1, ge=1, description="A mined term is used from this many distinct notes of a fit."
    )


class CodesConfig(StrictModel):
    """Files of the code systems without packaged tables (see `knowledge.CodeSources`),
    and annotated mentions to mine terms from (`mentions`, None: none)."""

    hcpcs: str | None = Field(
        default=None,
        description="CMS HCPCS release zip; default: the 2020 file under the shared data "
        "directory when it is there (else HCPCS codes go undescribed).",
    )
    cpt: str | None = Field(default=None, description="Licensed `code,description` CSV.")
    mentions: MentionsConfig | None = None

    def sources(self, *, language: str) -> CodeSources:
        """The sources a run builds its code knowledge from; a named file must exist.
        `language`: the notes' (`data.language`), which mined terms are made in."""
        mentions = self.mentions.file if self.mentions else None
        named = (("hcpcs", self.hcpcs), ("cpt", self.cpt), ("mentions.file", mentions))
        for name, value in named:
            if value is not None and not Path(value).is_file():
                raise FileNotFoundError(f"codes.{name}: no file at {value}")
        hcpcs = Path(self.hcpcs) if self.hcpcs else shared_data_dir() / HCPCS_ZIP
        return CodeSources(
            hcpcs=hcpcs if hcpcs.is_file() else None,
            cpt=Path(self.cpt) if self.cpt else None,
            mentions=Path(mentions) if mentions else None,
            mention_min_notes=self.mentions.min_notes if self.mentions else 1,
            mention_language=language,
        )


def shared_data_dir() -> Path:
    """`$AUTOCODE_SHARED_DATA`, else its default (`../shared/data`)."""
    return Path(os.environ.get(SHARED_DATA, ENV_DEFAULTS[SHARED_DATA]))


class CalibrationConfig(StrictModel):
    method: Literal["none", "platt", "isotonic"] = "platt"


class ThresholdConfig(StrictModel):
    shrinkage: float = Field(default=10.0, ge=0)


MentionContext = Literal["negated", "hypothetical", "uncertain", "historical", "family"]


def _default_blocking() -> list[MentionContext]:
    return ["negated", "hypothetical", "uncertain", "family"]  # `context.NOT_CODED`


class TermRulesConfig(StrictModel):
    """Mined terms that accept their code without review (`decisions.term_rules`): a term
    is measured on held-out training notes, at least `min_notes` of which must mention
    it, and must have been coded there as often as the held-out check asks; mentions in
    a `blocking` context do not count."""

    min_notes: int = Field(default=2, ge=1)
    blocking: list[MentionContext] = Field(default_factory=_default_blocking)
    # A mention inside a longer ICD-10-CM code name of other codes does not count ("fever"
    # in "dengue fever"): `decisions.term_rules.term_mentions`.
    code_names: bool = True
    # A term that is no rule but was coded in this share of its `min_notes`+ held-out notes
    # backs its code: where a note mentions it, the code is accepted from the backing
    # threshold, tuned held out (`decisions.term_rules`). None: no backing terms.
    backing_cut: float | None = Field(default=0.8, gt=0, le=1)


class RoutingConfig(StrictModel):
    """Named as `tune_review_bands` names them; defaults from `ROUTING_DEFAULTS`.
    `term_rules`: mined terms that accept their code (needs `codes.mentions`; None: off).
    `hold_unaffirmed`: a label-space ICD-10-CM code the note names only negated,
    hypothetical, about family or within longer names of other codes ("Q fever" names no
    fever) is not accepted on its probability (`Coder.unaffirmed`); false for corpora
    whose coders code such mentions, as CodiEsp's do (it then holds neither)."""

    target_precision: float = Field(default=ROUTING_DEFAULTS.target_precision, gt=0, le=1)
    target_recall: float = Field(default=ROUTING_DEFAULTS.target_recall, gt=0, le=1)
    min_support: int = Field(default=ROUTING_DEFAULTS.min_support, ge=1)
    # A note lists at most this many uncertain codes for review (its most probable).
    max_review_codes: int | None = Field(default=ROUTING_DEFAULTS.max_review_codes, ge=1)
    term_rules: TermRulesConfig | None = None
    hold_unaffirmed: bool = True


class SemanticConfig(StrictModel):
    """Semantic matching in the open part (`models.semantic`): each note sentence's
    `top_k` nearest ICD-10-CM codes by cosine of a sentence encoder's embeddings, from
    `min_cosine`, are candidates too, and every candidate gets its best cosine as a
    feature. `encoder`: a local directory, a bundled name (all-MiniLM-L6-v2) or a hub
    name. The code list's embeddings are cached in `cache_dir` (None: not cached)."""

    encoder: str = "sentence-transformers/all-MiniLM-L6-v2"
    top_k: int = Field(default=3, ge=1)
    min_cosine: float = Field(default=0.5, ge=-1, le=1)
    quantize: bool = True
    cache_dir: Path | None = Path("~/.cache/autocode/semantic")


class OpenCodesConfig(StrictModel):
    """The open part (`decisions.open_codes`): codes beyond the label space proposed from
    the code names a note mentions. `blocking`: mention contexts that do not code.
    Accepting one without review needs `routing.target_precision` on at least
    `routing.min_support` out-of-fold proposals."""

    blocking: list[MentionContext] = Field(default_factory=_default_blocking)
    semantic: SemanticConfig | None = None
    # A matched code's siblings (the other children of its parent) are candidates too.
    siblings: bool = False
    # A feature: the tabular pairs the candidate with another of the note's candidates
    # (use additional code, code also, code first).
    pairs: bool = False
    # Codes a stated number decides are ICD-10-CM candidates too: weeks of gestation
    # (Z3A) and adult BMI (Z68) (`knowledge.numeric_codes`).
    numbers: bool = True
    # A found code's children and siblings of the side its sentence names are candidates
    # too ("left eye": H30.92 beside H30.90), with a feature saying so. Off by default:
    # on CodiEsp it raised the held-out F1 (0.199 to 0.205) but not dev's unseen recall.
    sides: bool = False
    # An ICD-10-PCS open part too: prefixes named by their operation and body part
    # (`knowledge.pcs_names`), fitted beside the ICD-10-CM one; training needs PCS codes.
    procedures: bool = False


class TrackingConfig(StrictModel):
    experiment: str | None = None
    registered_model: str | None = None
    log_model: bool = True


class TrainConfig(StrictModel):
    name: str
    seed: int = Field(default=0, ge=0)  # also the model's, where it sets none (model_params)
    crossfit_folds: int = Field(default=5, ge=2)
    data: DataConfig
    labels: LabelConfig = LabelConfig()
    codes: CodesConfig = CodesConfig()
    model: ModelConfig = ModelConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    thresholds: ThresholdConfig = ThresholdConfig()
    routing: RoutingConfig = RoutingConfig()
    # None: the Coder predicts its label space only.
    open_codes: OpenCodesConfig | None = None
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


def _nested_fields(annotation: Any) -> list[str]:
    """Field names of the params model inside an annotation such as `TfidfParams | None`."""
    members = typing.get_args(annotation) or (annotation,)
    return [
        name
        for member in members
        if isinstance(member, type) and issubclass(member, BaseModel)
        for name in member.model_fields
    ]


def load_config(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read YAML, expand `${VAR}`, apply `key.sub=value` overrides, validate.

    A YAML syntax error is a ValueError naming the file and line.
    """
    raw = _parse_yaml(expand_variables(path.read_text(encoding="utf-8")), str(path)) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got a {type(raw).__name__}")
    for override in overrides or []:
        apply_override(raw, override)
    _warn_of_a_missing_shared_data_default(raw)
    return TrainConfig.model_validate(raw)


def _warn_of_a_missing_shared_data_default(raw: dict[str, Any]) -> None:
    """The default of `${AUTOCODE_SHARED_DATA}` is relative to wherever autocode runs: where
    a setting still names it (no override replaced it) and it is not there, say so, as
    the error that follows cannot."""
    default = ENV_DEFAULTS[SHARED_DATA]
    if SHARED_DATA in os.environ or Path(default).exists():
        return
    naming = sorted(
        key for key, value in dotted(raw).items() if str(value).startswith(default + "/")
    )
    if naming:
        warnings.warn(
            f"{', '.join(naming)}: ${{{SHARED_DATA}}} is not set, and its default {default} "
            f"does not exist from {Path.cwd()}; set {SHARED_DATA}",
            SharedDataWarning,
            stacklevel=3,
        )


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"{where}:{position} YAML syntax error: {problem}") from None


class SharedDataWarning(UserWarning):
    """The shared data directory, or a file it should hold, is not there."""


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
    node[leaf] = _parse_yaml(value, f"override {override!r}")


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
