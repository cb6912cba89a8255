"""Experiment configs: YAML, `${VAR}` expansion, `--set` overrides, strict validation, flatten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from autocode.cli import app
from autocode.config import (
    ENV_DEFAULTS,
    TrainConfig,
    apply_override,
    expand_variables,
    flatten,
    load_config,
)
from autocode.models import model_class
from conftest import REPO_ROOT

MINIMAL = {"name": "exp-1", "data": {"source": "notes"}}


def write_yaml(path: Path, payload: dict[str, Any] | str) -> Path:
    path.write_text(payload if isinstance(payload, str) else yaml.safe_dump(payload))
    return path


def test_yaml_is_loaded_into_typed_sections(tmp_path: Path) -> None:
    config = load_config(
        write_yaml(
            tmp_path / "c.yaml",
            """
name: demo
seed: 7
data:
  source: archive
  split_ratios: [0.7, 0.2, 0.1]
labels:
  min_count: 3
model:
  name: tfidf
  params:
    min_df: 2
    char_ngram_range: [2, 4]
calibration:
  method: isotonic
routing:
  target_precision: 0.9
""",
        )
    )
    assert config.seed == 7
    assert config.data.source == "archive"
    assert config.data.split_ratios == (0.7, 0.2, 0.1)
    assert config.labels.min_count == 3
    assert config.model.params == {"min_df": 2, "char_ngram_range": [2, 4]}
    assert config.calibration.method == "isotonic"
    assert config.routing.target_precision == 0.9
    # Untouched sections keep their defaults.
    assert config.data.validation_splits == ["validation"]
    assert config.crossfit_folds == 5
    assert config.thresholds.shrinkage == 10.0
    assert config.experiment_name == config.registered_model_name == "demo"


def test_tracking_names_override_the_experiment_name() -> None:
    config = TrainConfig.model_validate(
        {**MINIMAL, "tracking": {"experiment": "team-exp", "registered_model": "coder-v"}}
    )
    assert config.experiment_name == "team-exp"
    assert config.registered_model_name == "coder-v"


@pytest.mark.parametrize(
    ("name", "model_name"), [("demo.yaml", "tfidf"), ("tfidf.yaml", "tfidf-lexicon")]
)
def test_the_shipped_configs_validate(
    name: str, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOCODE_SHARED_DATA", "/data/shared")
    config = load_config(REPO_ROOT / "configs" / name)
    assert config.model.name == model_name
    # The params are the model's real keyword arguments.
    model = model_class(config.model.name)(**config.model.params)
    assert model.get_params().items() >= config.model.params.items()  # type: ignore[attr-defined]
    if name == "tfidf.yaml":
        assert config.data.source == "/data/shared/codiesp"
        assert config.data.validation_splits == []


def test_shared_data_variable_is_expanded_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(
        tmp_path / "c.yaml", "name: x\ndata:\n  source: ${AUTOCODE_SHARED_DATA}/mimic\n"
    )
    monkeypatch.setenv("AUTOCODE_SHARED_DATA", "/mnt/corpora")
    assert load_config(path).data.source == "/mnt/corpora/mimic"
    monkeypatch.delenv("AUTOCODE_SHARED_DATA")
    assert ENV_DEFAULTS["AUTOCODE_SHARED_DATA"] == "../shared/data"
    assert load_config(path).data.source == "../shared/data/mimic"


def test_an_unset_variable_without_default_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOCODE_NO_SUCH_VAR", raising=False)
    with pytest.raises(ValueError, match=r"\$\{AUTOCODE_NO_SUCH_VAR\}"):
        expand_variables("source: ${AUTOCODE_NO_SUCH_VAR}/x")
    monkeypatch.setenv("AUTOCODE_NO_SUCH_VAR", "here")
    assert expand_variables("a: ${AUTOCODE_NO_SUCH_VAR}/x $HOME") == "a: here/x $HOME"


def test_overrides_set_nested_keys_with_yaml_values(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", {**MINIMAL, "model": {"params": {"epochs": 5}}})
    config = load_config(
        path,
        [
            "model.params.epochs=3",
            "model.params.learning_rate=0.25",
            "data.split_ratios=[0.5, 0.25, 0.25]",
            "data.validation_splits=[]",
            "tracking.experiment=sweep",  # a section the file does not have
            "seed=11",
        ],
    )
    assert config.model.params == {"epochs": 3, "learning_rate": 0.25}
    assert isinstance(config.model.params["epochs"], int)
    assert config.data.split_ratios == (0.5, 0.25, 0.25)
    assert config.data.validation_splits == []
    assert config.tracking.experiment == "sweep"
    assert config.seed == 11


@pytest.mark.parametrize(
    ("override", "fragment"),
    [("model.params.epochs", "expected key=value"), ("=3", "expected key=value")],
)
def test_malformed_overrides_are_rejected(override: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        apply_override(dict(MINIMAL), override)


def test_an_override_below_a_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="'name' is not a section"):
        apply_override({"name": "x"}, "name.first=y")


@pytest.mark.parametrize(
    ("payload", "location"),
    [
        ({**MINIMAL, "modle": {"name": "tfidf"}}, ("modle",)),
        ({**MINIMAL, "model": {"name": "tfidf", "parms": {}}}, ("model", "parms")),
        ({"name": "x", "data": {"source": "s", "sorce": "t"}}, ("data", "sorce")),
        ({**MINIMAL, "routing": {"target_presicion": 0.9}}, ("routing", "target_presicion")),
    ],
)
def test_unknown_keys_are_rejected_by_name(
    payload: dict[str, Any], location: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as error:
        TrainConfig.model_validate(payload)
    [first] = error.value.errors()
    assert first["type"] == "extra_forbidden"
    assert first["loc"] == location
    assert location[-1] in str(error.value)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("labels.min_count=0", "min_count"),
        ("routing.target_precision=1.5", "target_precision"),
        ("routing.min_support=0", "min_support"),
        ("calibration.method=softmax", "method"),
        ("crossfit_folds=1", "crossfit_folds"),
        ("data.format=xml", "format"),
        ("data.split_ratios=[0.5, 0.5]", "split_ratios"),
        ("thresholds.shrinkage=-1", "shrinkage"),
        ("seed=seven", "seed"),
        ("name=has space", "name"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(
    tmp_path: Path, override: str, field: str
) -> None:
    path = write_yaml(tmp_path / "c.yaml", MINIMAL)
    with pytest.raises(ValidationError, match=field):
        load_config(path, [override])


def test_missing_required_sections_are_rejected() -> None:
    with pytest.raises(ValidationError, match="data"):
        TrainConfig.model_validate({"name": "x"})


def test_train_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", {**MINIMAL, "modle": {}})
    result = CliRunner().invoke(app, ["train", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path}: modle: Extra inputs are not permitted"
    bad_set = CliRunner().invoke(
        app, ["train", "--config", str(path), "--set", "labels.min_count=0"]
    )
    assert bad_set.exit_code == 2
    assert "error:" in bad_set.stderr


def test_flatten_gives_dotted_string_params() -> None:
    config = TrainConfig.model_validate(
        {**MINIMAL, "model": {"name": "tfidf", "params": {"epochs": 3, "ngrams": [2, 4]}}}
    )
    flat = flatten(config)
    assert all(isinstance(value, str) for value in flat.values())
    assert flat["name"] == "exp-1"
    assert flat["seed"] == "0"
    assert flat["data.source"] == "notes"
    assert flat["data.split_ratios"] == "[0.8, 0.1, 0.1]"
    assert flat["data.validation_splits"] == "['validation']"
    assert flat["data.system"] == "None"
    assert flat["model.name"] == "tfidf"
    assert flat["model.params.epochs"] == "3"
    assert flat["model.params.ngrams"] == "[2, 4]"
    assert flat["routing.target_precision"] == "0.95"
    assert flat["tracking.log_model"] == "True"
    # One entry per leaf: every field of every section, and nothing else.
    sections = ("data", "labels", "calibration", "thresholds", "routing", "tracking")
    expected_keys = {"name", "seed", "crossfit_folds", "model.name"}
    expected_keys |= {"model.params.epochs", "model.params.ngrams"}
    for section in sections:
        fields = type(getattr(config, section)).model_fields
        expected_keys |= {f"{section}.{field}" for field in fields}
    assert set(flat) == expected_keys
