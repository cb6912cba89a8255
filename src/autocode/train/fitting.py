"""Fit a Coder: label space, model, then calibration, thresholds and review bands
tuned on validation scores (a validation split, or out-of-fold scores).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from autocode.codes import ICD10CM, ICD10PCS
from autocode.config import SemanticConfig, TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.decisions.calibration import make_calibrator
from autocode.decisions.coder import Coder
from autocode.decisions.open_codes import OpenCodes, OpenPartCalibrationError, fit_open_codes
from autocode.decisions.policy import backing_threshold, tune_review_bands
from autocode.decisions.routing_facts import RoutingFacts
from autocode.decisions.term_rules import TermRules, fit_term_rules
from autocode.decisions.thresholds import tune_thresholds
from autocode.knowledge import CodeKnowledge
from autocode.knowledge.candidates import label_code_names, label_holding_names
from autocode.knowledge.mined import fingerprints
from autocode.labels import LabelSpace
from autocode.models import PARAMS, CodingModel, FoldEnsemble, model_class
from autocode.models.crossfit import fold_splits, out_of_fold_scores

if TYPE_CHECKING:
    from autocode.models.semantic import SemanticMatcher

logger = logging.getLogger(__name__)


@dataclass
class FittedCoder:
    coder: Coder
    # The model's uncalibrated scores the decisions were tuned on: the validation split's
    # (the calibration plot and the validation report read them), else the training
    # notes' out-of-fold ones.
    validation_raw: np.ndarray
    validation_gold: sp.csr_matrix


def fit_coder(
    config: TrainConfig,
    train: NoteSet,
    validation: NoteSet | None,
    *,
    knowledge: CodeKnowledge | None = None,
) -> FittedCoder:
    """Train on `train`; tune decisions on `validation`, or cross-fit when it is None.

    `knowledge` is what the codes mean, built by the entry point from the config's code
    sources (None: the packaged ICD tables only); the models that read it get it through
    the label space. The validation split, when there is one, is also handed to the
    model's `fit` (e.g. for early stopping). A `fold-ensemble` model cross-fits itself:
    without a validation split its members' out-of-fold scores tune the decisions (its
    own `folds`, and `seed` unless it sets one; term rules and open parts keep
    `crossfit_folds`), and nothing is refitted.
    """
    labels = fit_label_space(config, train, knowledge)
    Y_train = labels.encode(train.codes)
    logger.info("label space: %d codes", len(labels))
    # Before the model: an open part these notes cannot calibrate fails in seconds.
    open_codes, open_procedures = fit_open_parts(config, train)
    model = new_model(config)
    if validation is not None and len(validation) > 0:
        logger.info("fitting on %d notes, scoring %d validation notes", len(train), len(validation))
        gold = labels.encode(validation.codes)
        model.fit(
            train.texts,
            Y_train,
            labels=labels,
            validation=(validation.texts, gold),
            groups=train.groups,
        )
        raw = model.predict_proba(validation.texts)
    elif isinstance(model, FoldEnsemble):
        # Its fit is the cross-fit: its members' out-of-fold scores, and no refit.
        raw = model.fit_out_of_fold(train.texts, Y_train, labels=labels, groups=train.groups)
        gold = Y_train
    else:
        raw = out_of_fold_scores(
            lambda: new_model(config),
            train.texts,
            Y_train,
            labels=labels,
            folds=config.crossfit_folds,
            seed=config.seed,
            purpose="decision cross-fit",
            groups=train.groups,
        )
        gold = Y_train
        logger.info("fitting the final model on all %d training notes", len(train))
        model.fit(train.texts, Y_train, labels=labels, groups=train.groups)
    rules = None
    settled = backed = None
    if config.routing.term_rules is not None:
        rules = fit_rules(config, train, knowledge, labels)
        # What the rules accept and the backing terms back in the notes the policy is
        # tuned on, held out as its scores are: a validation split's notes, else each
        # training note's fold.
        tuned_on = validation.texts if validation is not None and len(validation) > 0 else None
        held_out = rules.held_out_accepts if tuned_on is None else rules.accepted(tuned_on)
        settled = _entries(labels, held_out)
        if rules.backing:
            backing = rules.held_out_backed if tuned_on is None else rules.backed(tuned_on)
            backed = _entries(labels, backing) & ~settled
    logger.info("calibrating, tuning thresholds and review bands")
    coder = tune_decisions(config, model, labels, raw, gold, settled=settled, backed=backed)
    if rules is not None and backed is not None:
        logger.info(
            "backing terms: %d; their codes accepted from probability %s",
            len(rules.backing),
            "(none reached the target)"
            if coder.backing_threshold is None
            else f"{coder.backing_threshold:.3f}",
        )
    coder.open_codes, coder.open_procedures = open_codes, open_procedures
    coder.term_rules = rules
    return FittedCoder(coder=coder, validation_raw=raw, validation_gold=gold)


def _entries(labels: LabelSpace, codes: Sequence[Collection[str]]) -> np.ndarray:
    """(notes, labels) booleans of each note's `codes` (those outside `labels` left out)."""
    return labels.encode([list(found) for found in codes]).toarray() > 0


def fit_open_parts(
    config: TrainConfig, train: NoteSet
) -> tuple[OpenCodes | None, OpenCodes | None]:
    """The configured open parts, ICD-10-CM's and ICD-10-PCS's (None where not asked for)."""
    if config.open_codes is None:
        return None, None
    logger.info("fitting the open part on codes held out of the training folds")
    diagnoses = fit_open_part(config, train)
    procedures = fit_open_part(config, train, ICD10PCS) if config.open_codes.procedures else None
    return diagnoses, procedures


def fit_open_part(config: TrainConfig, train: NoteSet, system: str = ICD10CM) -> OpenCodes:
    """The open part of `system`, its calibration from the training notes' folds
    (`fit_open_codes`). The semantic matcher, siblings, pairs, numbers and sides are
    ICD-10-CM's, as is the external-cause feature every ICD-10-CM part weighs."""
    assert config.open_codes is not None
    if not any(code.startswith(f"{system}:") for codes in train.codes for code in codes):
        raise ValueError(
            f"open_codes: the training notes hold no {system} code to fit its open part on"
            + ("; set open_codes.procedures to false" if system == ICD10PCS else "")
        )
    folds = fold_splits(len(train), folds=config.crossfit_folds, seed=config.seed)
    diagnoses = system == ICD10CM
    try:
        return fit_open_codes(
            train.texts,
            train.codes,
            folds,
            blocking=config.open_codes.blocking,
            target_precision=config.routing.target_precision,
            min_support=config.routing.min_support,
            semantic=semantic_matcher(config.open_codes.semantic) if diagnoses else None,
            siblings=diagnoses and config.open_codes.siblings,
            pairs=diagnoses and config.open_codes.pairs,
            numbers=diagnoses and config.open_codes.numbers,
            sides=diagnoses and config.open_codes.sides,
            system=system,
        )
    except OpenPartCalibrationError as error:  # PCS names are English: others may name none
        if diagnoses:
            raise
        raise OpenPartCalibrationError(f"{error}; set open_codes.procedures to false") from error


def fit_rules(
    config: TrainConfig, train: NoteSet, knowledge: CodeKnowledge | None, labels: LabelSpace
) -> TermRules:
    """Term rules from the training notes' folds (`fit_term_rules`); with no rule where
    no choice reached the routing target held out (its report says so)."""
    assert config.routing.term_rules is not None
    if knowledge is None or knowledge.mined is None:
        raise ValueError("routing.term_rules needs mined terms: name them in codes.mentions")
    settings = config.routing.term_rules
    if not knowledge.mined.supported_by(fingerprints(train.texts)):
        raise ValueError(
            f"routing.term_rules: none of the mined terms ({knowledge.mined.lineage()}) "
            f"comes from these training notes (data.language={config.data.language}): "
            "they were mined from other notes, or in another language"
        )
    logger.info("measuring mined terms on the training folds for term rules")
    rules = fit_term_rules(
        train.texts,
        train.codes,
        fold_splits(len(train), folds=config.crossfit_folds, seed=config.seed),
        knowledge.mined,
        blocking=settings.blocking,
        target_precision=config.routing.target_precision,
        min_support=config.routing.min_support,
        min_notes=settings.min_notes,
        codes=labels.codes_,  # the Coder accepts label-space codes only
        code_names=settings.code_names,
        backing_cut=settings.backing_cut,
    )
    report = rules.report
    checks = ", ".join(
        f"{k}: {v['precision']:.3f} on {v['pairs']}" for k, v in report["checked"].items()
    )
    logger.info(
        "term rules: %d (terms mentioned in %s+ held-out notes, coded in %s of them; "
        "held-out check per choice: %s)",
        len(rules.rules),
        report["min_notes"],
        report["cut"],
        checks,
    )
    # The held-out check is kept with the Coder even where no term qualified.
    return rules


def semantic_matcher(config: SemanticConfig | None) -> SemanticMatcher | None:
    """The open part's semantic matcher: the encoder, and the embeddings of every
    ICD-10-CM code name (from the cache when it holds them)."""
    if config is None:
        return None
    from autocode.knowledge.candidates import icd10cm_names
    from autocode.models.semantic import SemanticMatcher, SentenceEncoder, cached_code_embeddings

    encoder = SentenceEncoder.load(config.encoder, quantize=config.quantize)
    cache = config.cache_dir.expanduser() if config.cache_dir else None
    embeddings = cached_code_embeddings(encoder, icd10cm_names(), cache)
    return SemanticMatcher(encoder, embeddings, top_k=config.top_k, min_cosine=config.min_cosine)


def fit_label_space(
    config: TrainConfig, train: NoteSet, knowledge: CodeKnowledge | None = None
) -> LabelSpace:
    """The codes to learn, or a one-line error when the training notes give none."""
    if len(train) == 0:
        raise ValueError("no training notes: check data.train_splits and the source")
    labels = LabelSpace(config.labels.min_count, knowledge).fit(train.codes)
    if len(labels) == 0:
        raise ValueError(f"no code reaches labels.min_count={config.labels.min_count} in training")
    return labels


def tune_decisions(
    config: TrainConfig,
    model: CodingModel,
    labels: LabelSpace,
    raw: np.ndarray,
    gold: sp.csr_matrix,
    *,
    settled: np.ndarray | None = None,
    backed: np.ndarray | None = None,
) -> Coder:
    """The Coder of a fitted `model`: its decisions tuned on validation scores.

    `raw` are the model's uncalibrated (notes, labels) validation scores (a validation
    split's, or out-of-fold ones) and `gold` their (notes, labels) multi-hot codes. Tuned,
    in order: the calibrator (`config.calibration.method`), fitted on raw scores; for
    each code system apart, its best global threshold by micro-F1 on the calibrated
    scores, its per-code thresholds (each code's best F1 shrunk toward the system's
    threshold by `config.thresholds.shrinkage`) and its review bands (accept and reject
    thresholds per code) for `config.routing`'s targets: one system's scores do not move
    another's decisions (PCS's weaker scores once raised the CM accept threshold).
    Returns the Coder bundling the model, `labels`, those decisions and the ICD-10-CM
    facts routing needs about `labels` (`RoutingFacts`); logs nothing. `settled`: the
    (notes, labels) entries term rules accept, which the review bands are tuned beside
    (`tune_review_bands`); `backed`: those backing terms back and no rule accepts, whose
    own threshold (`backing_threshold`) is tuned first, and what it accepts is settled too.
    """
    calibrator = make_calibrator(config.calibration.method).fit(raw, gold)
    probs = calibrator.transform(raw)
    backing = None
    if backed is not None:
        routing = config.routing
        backing = backing_threshold(
            gold, probs, backed, routing.target_precision, routing.min_support
        )
        if backing is not None:
            by_backing = backed & (probs >= backing)
            settled = by_backing if settled is None else settled | by_backing
    systems = decision_groups(labels)
    thresholds = tune_thresholds(gold, probs, config.thresholds.shrinkage, groups=systems)
    policy = tune_review_bands(
        gold,
        probs,
        target_precision=config.routing.target_precision,
        min_support=config.routing.min_support,
        target_recall=config.routing.target_recall,
        max_review_codes=config.routing.max_review_codes,
        groups=systems,
        settled=settled,
    )
    label_names = label_code_names(labels.codes_)
    return Coder(
        model=model,
        model_name=config.model.name,
        labels=labels,
        calibrator=calibrator,
        thresholds=thresholds,
        policy=policy,
        info={"config_name": config.name},
        # Looked up now, so that a loaded Coder routes without parsing the tabular or
        # indexing every code's names.
        routing_facts=RoutingFacts.for_codes(labels.codes_),
        label_names=label_names,
        hold_unaffirmed=config.routing.hold_unaffirmed,
        backing_threshold=backing,
        label_holding_names=label_holding_names(label_names)
        if config.routing.hold_unaffirmed
        else None,
    )


def decision_groups(labels: LabelSpace) -> list[np.ndarray]:
    """The label columns whose decisions are tuned together: each code system's."""
    return list(labels.system_columns().values())


def new_model(config: TrainConfig) -> CodingModel:
    """The config's model, unfitted, built with `model_params`."""
    return model_class(config.model.name)(**model_params(config))


def model_params(config: TrainConfig) -> dict[str, Any]:
    """The model's constructor arguments: `model.params`, and the run's `seed` for a model
    that takes one and is given none there, so that `--set seed=N` reseeds the model (a
    fold ensemble's folds too) with the Coder's cross-fit. Nested models (an ensemble's
    member, a stack's bases) keep their own."""
    params = dict(config.model.params)
    if "seed" in PARAMS[config.model.name].model_fields:
        params.setdefault("seed", config.seed)
    return params
