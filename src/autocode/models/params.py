"""Pydantic models of each coding model's hyperparameters, read off its constructor.

The constructor stays the one source of names and defaults (as in scikit-learn); the
params model adds what a config needs before any fitting starts: unknown names and
values of the wrong type or range are rejected, naming the key.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator

from autocode.models.base import CodingModel, constructor_params


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


def check_params(model: object, params_model: type[BaseModel]) -> None:
    """`model`'s hyperparameters against its params model; the first bad one, named in one
    line. Models call this first thing in `fit`, as scikit-learn checks
    `_parameter_constraints`: a bad value set after construction is caught there too."""
    try:
        params_model.model_validate(constructor_params(model))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(
            f"{type(model).__name__} parameter {where}: {first['msg']} (got {first['input']!r})"
        ) from None


def registered_model(name: str) -> type[CodingModel]:
    """The registered model class named `name`, unknown names listing the valid ones."""
    # The registry imports every model, those made of other models among them: looked up
    # when used.
    from autocode.models import model_class

    return model_class(name)


class ModelSpec(BaseModel):
    """A registered model by name, with its params checked by that model's params model:
    how a stack names its base models."""

    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _params_fit_the_model(self) -> ModelSpec:
        # The registry imports every model, the stack's among them: looked up when used.
        from autocode.models import PARAMS, params_model

        params_model(self.name)  # unknown names list the valid ones
        try:
            checked = PARAMS[self.name].model_validate(self.params)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"{self.name} params.{where}: {first['msg']}") from None
        self.params = checked.model_dump(exclude_unset=True)
        return self


def spec_model(spec: ModelSpec) -> CodingModel:
    """A new, unfitted model as `spec` names it (a stack's base, an ensemble's member)."""
    return registered_model(spec.name)(**spec.params)
