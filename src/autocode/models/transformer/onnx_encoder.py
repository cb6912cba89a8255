"""The encoder exported to ONNX and run by ONNX Runtime, for CPU inference.

The export happens in memory from the fitted encoder (nothing is written or read from
disk), with the batch and sequence axes dynamic, so any chunk batch runs. The exported
graph computes what the eager encoder does, in float32 (tested to 1e-4).
Needs the `onnx` extra: onnx (the exporter writes its protobuf) and onnxruntime.
"""

from __future__ import annotations

import copy
import io
import warnings
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

INPUTS = ("input_ids", "attention_mask")
OPSET = 17
DYNAMIC_AXES = {name: {0: "chunks", 1: "positions"} for name in (*INPUTS, "hidden")}


class OnnxEncoder(nn.Module):
    """Called like a Hugging Face encoder: (input_ids, attention_mask) → an object whose
    `last_hidden_state` is a float32 CPU tensor."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise ImportError(
                "ONNX inference needs the `onnx` extra: pip install -c constraints.txt -e '.[onnx]'"
            ) from None
        self.config = encoder.config  # read by the model as from any encoder
        self.session = onnxruntime.InferenceSession(
            export_onnx(encoder), providers=["CPUExecutionProvider"]
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        feeds = {
            "input_ids": input_ids.cpu().numpy(),
            "attention_mask": attention_mask.cpu().numpy(),
        }
        [hidden] = self.session.run(["hidden"], feeds)
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))


class _HiddenStates(nn.Module):
    """The encoder with one tensor output, as the exporter needs."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return output.last_hidden_state


def export_onnx(encoder: nn.Module) -> bytes:
    """The encoder's ONNX graph, exported from a copy (export flips train/eval modes)."""
    wrapped = _HiddenStates(copy.deepcopy(encoder).cpu()).eval()
    # Two chunks of three positions, the second one padded: traces the masking path.
    example = (torch.tensor([[1, 2, 3], [1, 2, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]]))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter (no onnxscript needed) warns that it is the older one,
        # and about tracing details that the dynamic axes and the equality test cover.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            example,
            buffer,  # type: ignore[arg-type]  # a file object: the TorchScript exporter takes one
            input_names=list(INPUTS),
            output_names=["hidden"],
            dynamic_axes=DYNAMIC_AXES,
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()
