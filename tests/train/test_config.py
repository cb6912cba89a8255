"""Experiment configs: YAML, `${VAR}` expansion, `--set` overrides, strict validation, flatten."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from autocode.cli import app
from autocode.config import (
    ENV_DEFAULTS,
    SharedDataWarning,
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
    # Params are checked, and typed, by the model's params model.
    assert config.model.params == {"min_df": 2, "char_ngram_range": (2, 4)}
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
    ("name", "model_name"),
    [
        ("demo.yaml", "tfidf"),
        ("tfidf.yaml", "tfidf-lexicon"),
        ("transformer.yaml", "transformer"),
        ("transformer-tiny.yaml", "transformer"),
        ("stack-transformer.yaml", "stack"),
        ("stack-transformer-gpu.yaml", "stack"),
        ("codiesp-best.yaml", "fold-ensemble"),
    ],
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
    # The default is relative to where autocode runs: from here it names nothing.
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.warns(SharedDataWarning) as warned:
        assert load_config(path).data.source == "../shared/data/mimic"
    assert str(warned[0].message) == (
        "data.source: ${AUTOCODE_SHARED_DATA} is not set, and its default "
        f"../shared/data does not exist from {work}; set AUTOCODE_SHARED_DATA"
    )
    with warnings.catch_warnings():  # an override that names the data says nothing of it
        warnings.simplefilter("error")
        assert load_config(path, ["data.source=notes.csv"]).data.source == "notes.csv"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
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
        ("seed=-1", "seed"),
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
        {
            **MINIMAL,
            "model": {"name": "tfidf", "params": {"epochs": 3, "char_ngram_range": [2, 4]}},
        }
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
    assert flat["model.params.char_ngram_range"] == "[2, 4]"
    assert flat["routing.target_precision"] == "0.95"
    assert flat["tracking.log_model"] == "True"
    # One entry per leaf: every field of every section, and nothing else.
    sections = ("data", "labels", "codes", "calibration", "thresholds", "routing", "tracking")
    expected_keys = {"name", "seed", "crossfit_folds", "model.name", "open_codes"}
    assert flat["open_codes"] == "None"  # no open part: one leaf
    expected_keys |= {"model.params.epochs", "model.params.char_ngram_range"}
    for section in sections:
        fields = type(getattr(config, section)).model_fields
        expected_keys |= {f"{section}.{field}" for field in fields}
    assert set(flat) == expected_keys


# ----------------------------------------------------------------------------- model params


@pytest.mark.parametrize(
    ("model", "location", "message"),
    [
        (
            {"name": "tfidf", "params": {"epoch": 3}},
            "model.params.epoch",
            "not a parameter of model 'tfidf'; valid: batch_size, char_ngram_range,",
        ),
        (
            {"name": "tfidf", "params": {"epochs": "five"}},
            "model.params.epochs",
            "Input should be a valid integer",
        ),
        (
            {"name": "tfidf", "params": {"epochs": 0}},
            "model.params.epochs",
            "Input should be greater than or equal to 1",
        ),
        (
            {"name": "tfidf", "params": {"char_ngram_range": [2]}},
            "model.params.char_ngram_range.1",
            "Field required",
        ),
        (
            {"name": "tfidf-lexicon", "params": {"tfidf": {"epoch": 3}}},
            "model.params.tfidf.epoch",
            "not a parameter of model 'tfidf-lexicon'; valid: batch_size,",
        ),
        (
            {"name": "tfidf-lexicon", "params": {"inner_folds": 1}},
            "model.params.inner_folds",
            "Input should be greater than or equal to 2",
        ),
        (
            {"name": "tfidf-lexicon", "params": {"min_df": 2}},
            "model.params.min_df",
            "valid: hard_negatives, inner_folds, random_negatives",
        ),
        (
            {"name": "tfidf-lexicn"},
            "model.name",
            "unknown model 'tfidf-lexicn'; valid: fold-ensemble, matcher,",
        ),
    ],
)
def test_model_params_are_checked_against_the_model(
    model: dict[str, Any], location: str, message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        TrainConfig.model_validate({**MINIMAL, "model": model})
    [first] = error.value.errors()
    assert ".".join(str(part) for part in first["loc"]) == location
    assert message in first["msg"]


def test_checked_params_keep_only_the_keys_the_config_set() -> None:
    config = TrainConfig.model_validate(
        {
            **MINIMAL,
            "model": {"name": "tfidf-lexicon", "params": {"tfidf": {"epochs": "3"}, "seed": 1}},
        }
    )
    # The constructor stays the source of every default; values get their declared type.
    assert config.model.params == {"tfidf": {"epochs": 3}, "seed": 1}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: x\ndata:\n  source: s\n   bad: [1\n", "line 4, column 7: YAML syntax error"),
        ("name: x\ndata: {source: s\n", "line 3, column 1: YAML syntax error"),
        ("- a\n- b\n", "expected a mapping of settings, got a list"),
    ],
)
def test_a_yaml_error_names_the_file_and_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = write_yaml(tmp_path / "c.yaml", text)
    with pytest.raises(ValueError, match=f"^{path}:") as error:
        load_config(path)
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_an_override_value_that_is_not_yaml_is_named() -> None:
    with pytest.raises(ValueError, match=r"override 'seed=\[1': .*YAML syntax error"):
        apply_override(dict(MINIMAL), "seed=[1")


# ----------------------------------------------------------------------------- before the run


@pytest.mark.parametrize(
    ("config", "overrides", "expected"),
    [
        (
            {"model": {"name": "tfidf", "params": {"epoch": 3}}},
            [],
            "model.params.epoch: not a parameter of model 'tfidf'; valid: ",
        ),
        (
            {},
            ["model.params.epoch=3"],
            "model.params.epoch: not a parameter of model 'tfidf'; valid: ",
        ),
        (
            {},
            ["model.params.epochs=five"],
            "model.params.epochs: Input should be a valid integer, unable to parse string as "
            "an integer (got 'five')",
        ),
        ({}, ["model.name=tfidf-lexicn"], "model.name: unknown model 'tfidf-lexicn'; valid: "),
        ("name: x\ndata:\n  source: s\n   bad: 1\n", [], "line 4, column 7: YAML syntax error"),
        ({}, ["labels.min_count=1000"], "no code reaches labels.min_count=1000 in training"),
        ({}, ["data.test_splits=[nope]"], "no test notes: no note is in data.test_splits"),
        (
            {"model": {"name": "fold-ensemble", "params": {"folds": 500}}},
            [],
            "a fold-ensemble with model.params.folds=500 needs at least that many training "
            "notes, got ",
        ),
    ],
)
def test_a_bad_config_is_one_line_and_starts_no_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any] | str,
    overrides: list[str],
    expected: str,
) -> None:
    from mlflow import MlflowClient

    from autocode.corpus.synth import write_synthetic_archive

    archive = tmp_path / "archive"
    write_synthetic_archive(archive, 60, seed=1, n_codes=10)
    payload = (
        config
        if isinstance(config, str)
        else {"name": "bad-config", "data": {"source": str(archive)}, **config}
    )
    path = write_yaml(tmp_path / "c.yaml", payload)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # a SQLite store's artifacts go under ./mlruns
    args = ["train", "--config", str(path), "--tracking-uri", tracking_uri]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    # Progress lines ("HH:MM:SS loading data from …") may come first; the error is one line.
    lines = result.stderr.strip().splitlines()
    [line] = [line for line in lines if not re.match(r"\d\d:\d\d:\d\d ", line)]
    assert line.startswith("error: ")
    assert expected in line
    assert "Traceback" not in result.output
    # No run, FAILED or otherwise, was left in the tracking store.
    client = MlflowClient(tracking_uri)
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments]) if experiments else []
    assert runs == []


def test_routing_defaults_are_written_once() -> None:
    import dataclasses
    import inspect

    from autocode.config import RoutingConfig
    from autocode.decisions.policy import ROUTING_DEFAULTS, tune_review_bands

    defaults = dataclasses.asdict(ROUTING_DEFAULTS)
    # Term rules are off unless a config asks for them (they need mined terms).
    assert RoutingConfig().model_dump() == {**defaults, "term_rules": None, "hold_unaffirmed": True}
    tuning = inspect.signature(tune_review_bands).parameters
    assert {name: tuning[name].default for name in defaults} == defaults
