"""Pydantic models of each coding model's hyperparameters, read off its constructor.

The constructor stays the one source of names and defaults (as in scikit-learn); the
params model adds what a config needs before any fitting starts: unknown names and
values of the wrong type or range are rejected, naming the key.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model


def constructor_params_model(model: type, name: str, **field_types: Any) -> type[BaseModel]:
    """A pydantic model (extra="forbid") of `model`'s keyword arguments.

    Each field has the constructor's annotation and default; `field_types` replaces the
    annotation of the fields it names (to add a range, `Annotated[int, Field(ge=1)]`, or
    to validate a nested mapping with another params model).
    """
    constructor = vars(model)["__init__"]  # the class's own, as scikit-learn reads it
    hints = typing.get_type_hints(constructor)
    parameters = inspect.signature(constructor).parameters
    unknown = sorted(set(field_types) - set(parameters))
    if unknown:
        raise TypeError(f"{model.__name__} has no parameter(s) {unknown}")
    fields: dict[str, Any] = {
        parameter.name: (field_types.get(parameter.name, hints[parameter.name]), parameter.default)
        for parameter in parameters.values()
        if parameter.name != "self"
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
