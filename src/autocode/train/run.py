"""`autocode train`: data → fit → calibrate → thresholds → evaluate → MLflow."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from autocode.config import TrainConfig, flatten
from autocode.decisions.coder import Coder
from autocode.decisions.policy import automation_curve
from autocode.knowledge import CodeKnowledge
from autocode.models import FoldEnsemble
from autocode.train import plots, tracking
from autocode.train.data import ExperimentData, load_experiment_data
from autocode.train.evaluation import evaluate_coder
from autocode.train.fitting import (
    decision_groups,
    fit_coder,
    fit_label_space,
    model_params,
    new_model,
)

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    test_metrics: dict[str, Any]
    validation_metrics: dict[str, Any]


def run_training(config: TrainConfig, tracking_uri: str | None = None) -> TrainResult:
    """Train, tune and evaluate one Coder as described by `config`, in one MLflow run.

    Loads the code knowledge and the data splits the config names, checks them before the
    run starts (`check_trainable`), then fits the model and tunes calibration, thresholds
    and review bands (`fit_coder`: on the validation split, or cross-fitted without one),
    and evaluates the Coder on validation (when there is one) and test. `tracking_uri`
    names the MLflow store (None: MLflow's default) of the run in
    `config.experiment_name`.

    Logged: the flattened config as params; data and code-source lineage; the quarantine
    summary; fit time and label count; validation plots (reliability, precision-recall,
    automation vs precision), the automation curve and the tuned policy; validation and
    test metrics; the test per-code report and metrics JSON; and, with
    `tracking.log_model`, the Coder as a model registered as
    `config.registered_model_name`. Returns the run id, the model URI ("" when not
    logged) and the test and validation metric reports ({} without a validation split).
    """
    # What codes mean is read once, here, from the files the config names: models, the
    # per-code report and evaluation all use this one object.
    knowledge = CodeKnowledge(config.codes.sources(language=config.data.language))
    logger.info("loading data from %s", config.data.source)
    data = load_experiment_data(config.data, config.seed)
    check_trainable(config, data)
    logger.info(
        "notes: train %d, validation %d, test %d (quarantined %d)",
        len(data.train),
        len(data.validation) if data.validation else 0,
        len(data.test),
        data.report.quarantined_total,
    )
    for reviewed in data.reviewed:
        logger.info("%s", reviewed.described())
    with tracking.start_run(config.experiment_name, tracking_uri) as run:
        tracking.log_params(logged_params(config))
        tracking.log_lineage(data.lineage(), config.name)
        tracking.log_code_sources(knowledge.lineage())
        tracking.log_json(data.report.to_dict(), "data/quarantine_summary.json")
        started = time.perf_counter()
        logger.info("fitting %s and tuning its decisions", config.model.name)
        fitted = fit_coder(config, data.train, data.validation, knowledge=knowledge)
        tracking.log_metrics({"fit_seconds": time.perf_counter() - started})
        coder = fitted.coder
        coder.info.update({"run_id": run.info.run_id, "labels": len(coder.labels)})
        tracking.log_metrics({"labels": len(coder.labels), **term_figures(coder)})
        tracking.log_epoch_history(getattr(coder.model, "history_", []))

        validation_probs = coder.calibrator.transform(fitted.validation_raw)
        # The curve of this run's own policy settings, not the defaults.
        curve = automation_curve(
            fitted.validation_gold,
            validation_probs,
            min_support=config.routing.min_support,
            target_recall=config.routing.target_recall,
            groups=decision_groups(coder.labels),  # as the policy was tuned
        )
        _log_decision_plots(fitted.validation_gold, fitted.validation_raw, validation_probs, curve)
        tracking.log_json({"curve": curve}, "validation/automation_curve.json")
        tracking.log_json(coder.policy.to_dict(), "validation/policy.json")

        logger.info("evaluating on validation and test")
        validation_metrics = _validation_metrics(coder, data, fitted.validation_raw)
        test = evaluate_coder(coder, data.test.texts, data.test.codes)
        tracking.log_metrics_tree(test.report, "test")
        tracking.log_table(test.per_code_table(coder, knowledge), "test/per_code_report.csv")
        tracking.log_json(test.report, "test/metrics.json")
        if config.tracking.log_model:
            logger.info("logging and registering the Coder")
        model_uri = (
            tracking.log_coder(coder, config.registered_model_name)
            if config.tracking.log_model
            else ""
        )
        return TrainResult(run.info.run_id, model_uri, test.report, validation_metrics)


def logged_params(config: TrainConfig) -> dict[str, str]:
    """The flattened config, with the model's params as the model is built (the run's
    seed filled in where the model takes one and sets none: `model_params`)."""
    model = config.model.model_copy(update={"params": model_params(config)})
    return flatten(config.model_copy(update={"model": model}))


def check_trainable(config: TrainConfig, data: ExperimentData) -> None:
    """What the run needs of the data, checked before it starts (no FAILED runs left behind)."""
    fit_label_space(config, data.train)
    if not data.test:
        raise ValueError(f"no test notes: no note is in data.test_splits {config.data.test_splits}")
    if not data.validation and len(data.train) < config.crossfit_folds:
        raise ValueError(
            f"cross-fitting with crossfit_folds={config.crossfit_folds} needs at least that "
            f"many training notes, got {len(data.train)}"
        )
    model = new_model(config)
    if isinstance(model, FoldEnsemble) and len(data.train) < model.folds:
        raise ValueError(
            f"a fold-ensemble with model.params.folds={model.folds} needs at least that many "
            f"training notes, got {len(data.train)}"
        )


def term_figures(coder: Coder) -> dict[str, float]:
    """How many term rules and backing terms the Coder accepts codes on, and the backing
    threshold; nothing for a Coder without term rules, no threshold where none was found."""
    if coder.term_rules is None:
        return {}
    figures = {
        "term_rules": float(len(coder.term_rules.rules)),
        "backing_terms": float(len(coder.term_rules.backing)),
    }
    if coder.backing_threshold is not None:
        figures["backing_threshold"] = coder.backing_threshold
    return figures


def _validation_metrics(coder: Coder, data: ExperimentData, raw: np.ndarray) -> dict[str, Any]:
    """The Coder's report on the validation split, from the model's scores of it that
    tuning read (`raw`: not predicted twice); {} without a split."""
    if not data.validation:
        return {}
    validation = data.validation
    report = evaluate_coder(coder, validation.texts, validation.codes, raw).report
    tracking.log_metrics_tree(report, "validation")
    return report


def _log_decision_plots(
    gold: sp.csr_matrix, raw: np.ndarray, calibrated: np.ndarray, curve: list[dict[str, Any]]
) -> None:
    figures = {
        "plots/reliability_validation.png": plots.reliability_figure(
            gold, raw, calibrated, "Calibration on validation"
        ),
        "plots/precision_recall_validation.png": plots.precision_recall_figure(
            gold, calibrated, "Micro precision-recall on validation"
        ),
        "plots/automation_vs_precision.png": plots.automation_figure(
            curve, "Automation vs target precision (validation)"
        ),
        "plots/code_automation_vs_precision.png": plots.code_automation_figure(
            curve, "Gold codes accepted without review vs target precision (validation)"
        ),
    }
    for path, figure in figures.items():
        tracking.log_figure(figure, path)
