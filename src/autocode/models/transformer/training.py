"""The training loop every mode shares, on whatever Accelerate places it.

One loop for CPU, one GPU and many (`accelerate launch` / `torchrun` shard the batches
across processes). Steps hold notes up to a token budget; AdamW with linear warm-up and
decay; gradients accumulated and clipped; after each epoch the validation metric decides
early stopping and which weights are kept; a checkpoint after each epoch lets a killed
run resume where it stopped and end exactly where an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from autocode import metrics
from autocode.models.transformer.chunking import token_budget_batches
from autocode.models.transformer.features import Features, run_in_batches

CHECKPOINT_VERSION = 1
PROGRESS_FILE = "progress.json"
LAST_WEIGHTS = "last.safetensors"
BEST_WEIGHTS = "best.safetensors"
OPTIMIZER_FILE = "optimizer.pt"  # tensors only, read back with weights_only=True
F1_THRESHOLDS = np.arange(0.05, 0.95, 0.05)


@dataclass(frozen=True)
class LoopSettings:
    epochs: int
    learning_rate: float  # the head's
    encoder_learning_rate: float
    weight_decay: float
    warmup_ratio: float
    gradient_accumulation_steps: int
    max_grad_norm: float
    token_budget: int
    early_stopping_metric: str
    patience: int
    seed: int
    progress: bool
    checkpoint_dir: Path | None


@dataclass
class Progress:
    """What a checkpoint remembers besides weights: where the run stands."""

    fingerprint: str
    epochs_done: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0
    epochs_without_gain: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class TrainingData:
    features: Features
    Y: np.ndarray  # (notes, labels) float32
    validation: Features | None = None
    validation_gold: sp.csr_matrix | None = None


def fingerprint(*parts: Any) -> str:
    """Identity of a run (settings, data): a checkpoint only resumes the run it came from."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def train_loop(
    module: nn.Module,
    data: TrainingData,
    settings: LoopSettings,
    accelerator: Any,
    run_id: str,
) -> Progress:
    """Train `module` (its parameters with requires_grad) on `data`; leaves it holding the
    best validation weights (or the last, without validation)."""
    _seed_everything(settings.seed)
    optimizer = _optimizer(module, settings)
    batches_per_epoch = len(_epoch_batches(data.features, settings, 0, accelerator))
    steps = settings.epochs * math.ceil(batches_per_epoch / settings.gradient_accumulation_steps)
    scheduler = _warmup_then_decay(optimizer, steps, settings.warmup_ratio)
    module, optimizer = accelerator.prepare(module, optimizer)
    progress = Progress(fingerprint=run_id)
    best: dict[str, torch.Tensor] | None = None
    # One folder per run (settings and data): cross-fitting folds sharing a checkpoint_dir
    # each resume their own run.
    checkpoints = None if settings.checkpoint_dir is None else settings.checkpoint_dir / run_id[:16]
    if checkpoints is not None:
        progress, best = _resume(checkpoints, run_id, module, optimizer, scheduler)
    while progress.epochs_done < settings.epochs and not _patience_spent(progress, settings, data):
        epoch = progress.epochs_done
        record = _train_epoch(module, optimizer, scheduler, data, settings, accelerator, epoch)
        if data.validation is not None and data.validation_gold is not None:
            score = _validation_metric(module, data, settings, accelerator)
            record[f"validation_{settings.early_stopping_metric}"] = score
            if score > progress.best_metric:
                progress.best_metric, progress.best_epoch = score, epoch + 1
                progress.epochs_without_gain = 0
                best = _trainable_state(accelerator.unwrap_model(module))
            else:
                progress.epochs_without_gain += 1
        progress.history.append(record)
        progress.epochs_done = epoch + 1
        if checkpoints is not None and accelerator.is_main_process:
            _save_checkpoint(checkpoints, progress, module, optimizer, scheduler, best)
        accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(module)
    if best is not None:
        unwrapped.load_state_dict(best, strict=False)
    unwrapped.eval()
    return progress


def _patience_spent(progress: Progress, settings: LoopSettings, data: TrainingData) -> bool:
    return data.validation is not None and progress.epochs_without_gain >= settings.patience


def _train_epoch(
    module: nn.Module,
    optimizer: Any,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    data: TrainingData,
    settings: LoopSettings,
    accelerator: Any,
    epoch: int,
) -> dict[str, float]:
    # Seeded per epoch, not once: a resumed run draws the same dropout masks and order.
    torch.manual_seed(settings.seed + epoch)
    module.train()
    batches = _epoch_batches(data.features, settings, epoch, accelerator)
    accumulate = settings.gradient_accumulation_steps
    loss_fn = nn.BCEWithLogitsLoss()
    total_loss, tokens, started = 0.0, 0, time.perf_counter()
    bar = _progress_bar(len(batches), epoch, settings, accelerator)
    for k, rows in enumerate(batches):
        targets = torch.from_numpy(data.Y[rows]).to(accelerator.device)
        logits = module(*data.features.inputs(rows, accelerator.device))
        loss = loss_fn(logits.float(), targets)
        accelerator.backward(loss / accumulate)
        if (k + 1) % accumulate == 0 or k + 1 == len(batches):
            if settings.max_grad_norm > 0:
                accelerator.clip_grad_norm_(module.parameters(), settings.max_grad_norm)
            optimizer.step()
            if not accelerator.optimizer_step_was_skipped:  # an fp16 overflow step
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        total_loss += float(loss.detach())
        tokens += sum(data.features.sizes[i] for i in rows)
        if bar is not None:
            seconds = time.perf_counter() - started
            bar.set_postfix(loss=f"{total_loss / (k + 1):.4f}", tok_s=f"{tokens / seconds:.0f}")
            bar.update()
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - started
    return {
        "epoch": float(epoch + 1),
        "loss": total_loss / max(1, len(batches)),
        "tokens_per_second": tokens / max(seconds, 1e-9),
        "learning_rate": float(scheduler.get_last_lr()[0]),
    }


def _epoch_batches(
    features: Features, settings: LoopSettings, epoch: int, accelerator: Any
) -> list[list[int]]:
    """This process's steps of one epoch: notes shuffled, packed to the token budget, and
    dealt round-robin to processes (each gets as many steps, as DDP needs)."""
    order = np.random.default_rng([settings.seed, epoch]).permutation(len(features.sizes))
    sizes = [features.sizes[i] for i in order]
    batches = [
        [int(order[p]) for p in positions]
        for positions in token_budget_batches(sizes, settings.token_budget)
    ]
    processes = accelerator.num_processes
    if processes > 1 and len(batches) >= processes:
        batches = batches[: len(batches) // processes * processes]
    return batches[accelerator.process_index :: processes]


def predict_logits(
    module: nn.Module, features: Features, budget: int, device: torch.device
) -> np.ndarray:
    module.eval()
    rows = run_in_batches(features, budget, device, module)
    return torch.stack(rows).numpy() if rows else np.zeros((0, 0), np.float32)


def validation_metric(name: str, gold: sp.csr_matrix, probs: np.ndarray) -> float:
    """`map`, or `micro_f1` at its best global threshold (thresholds are tuned later,
    on calibrated scores; what matters here is how well the scores can separate)."""
    if name == "map":
        value = metrics.mean_average_precision(gold, probs)
        return 0.0 if math.isnan(value) else value
    return max(metrics.micro_prf(gold, probs >= t).f1 for t in F1_THRESHOLDS)


def _validation_metric(
    module: nn.Module, data: TrainingData, settings: LoopSettings, accelerator: Any
) -> float:
    assert data.validation is not None and data.validation_gold is not None
    unwrapped = accelerator.unwrap_model(module)
    with accelerator.autocast():
        logits = predict_logits(
            unwrapped, data.validation, settings.token_budget, accelerator.device
        )
    return validation_metric(
        settings.early_stopping_metric, data.validation_gold, probabilities(logits)
    )


def _optimizer(module: nn.Module, settings: LoopSettings) -> torch.optim.AdamW:
    """Head and encoder at their own learning rates; no decay on biases and norms."""
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in module.named_parameters():
        if parameter.requires_grad:
            part = "head" if name.startswith("head.") or not name.startswith("encoder.") else "enc"
            groups.setdefault((part, parameter.ndim >= 2), []).append(parameter)
    rates = {"head": settings.learning_rate, "enc": settings.encoder_learning_rate}
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": rates[part],
                "weight_decay": settings.weight_decay if decays else 0.0,
            }
            for (part, decays), params in sorted(groups.items())
        ]
    )


def _warmup_then_decay(
    optimizer: torch.optim.Optimizer, steps: int, warmup_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = math.ceil(steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters training changes (a frozen encoder's stay out of checkpoints)."""
    return {
        name: parameter.detach().cpu().clone()
        for name, parameter in module.named_parameters()
        if parameter.requires_grad
    }


def _save_checkpoint(
    directory: Path,
    progress: Progress,
    module: nn.Module,
    optimizer: Any,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    best: dict[str, torch.Tensor] | None,
) -> None:
    """Weights and optimizer first, progress last and atomically: a kill mid-save leaves
    the previous epoch's progress, whose files a resume then reads again."""
    directory.mkdir(parents=True, exist_ok=True)
    unwrapped = _bare(module)
    save_file(_trainable_state(unwrapped), directory / LAST_WEIGHTS)
    if best is not None:
        save_file(best, directory / BEST_WEIGHTS)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        directory / OPTIMIZER_FILE,
    )
    payload = {"format_version": CHECKPOINT_VERSION, **asdict(progress)}
    partial = directory / (PROGRESS_FILE + ".partial")
    partial.write_text(json.dumps(payload), encoding="utf-8")
    partial.replace(directory / PROGRESS_FILE)


def _resume(
    directory: Path,
    run_id: str,
    module: nn.Module,
    optimizer: Any,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
) -> tuple[Progress, dict[str, torch.Tensor] | None]:
    path = directory / PROGRESS_FILE
    if not path.exists():
        return Progress(fingerprint=run_id), None
    payload = json.loads(path.read_text(encoding="utf-8"))
    if payload.pop("format_version", None) != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: not a checkpoint this autocode reads; delete {directory}")
    progress = Progress(**payload)
    if progress.fingerprint != run_id:
        raise ValueError(
            f"{directory} holds a checkpoint of another run (other settings or data): "
            "delete it or set another checkpoint_dir"
        )
    unwrapped = _bare(module)
    unwrapped.load_state_dict(load_file(directory / LAST_WEIGHTS), strict=False)
    saved = torch.load(directory / OPTIMIZER_FILE, weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    best_path = directory / BEST_WEIGHTS
    return progress, (load_file(best_path) if best_path.exists() else None)


def _bare(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper, or the module itself."""
    inner = getattr(module, "module", module)
    assert isinstance(inner, nn.Module)
    return inner


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)


def _progress_bar(total: int, epoch: int, settings: LoopSettings, accelerator: Any) -> Any:
    if not settings.progress or not accelerator.is_local_main_process:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{settings.epochs}", leave=False)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Sigmoid without overflow warnings for large negative logits."""
    return (0.5 * (1 + np.tanh(0.5 * logits))).astype(np.float32)
