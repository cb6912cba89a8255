"""The fine-tuned transformer coder (PLM-ICD style label-wise attention over long notes)."""

from autocode.models.transformer.model import TransformerModel, TransformerParams

__all__ = ["TransformerModel", "TransformerParams"]
