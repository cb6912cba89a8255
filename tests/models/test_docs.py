"""Every hyperparameter of every registered model is documented in its class docstring."""

from __future__ import annotations

import inspect

import pytest

from autocode.models import MODELS


def _constructor_owner(cls: type) -> type:
    """The class whose own `__init__` the model uses (a subclass may reuse its parent's)."""
    return next(klass for klass in cls.__mro__ if "__init__" in vars(klass))


def _documented_parameters(cls: type) -> set[str]:
    """Names of the numpydoc `Parameters` entries (`name : type...`) in cls's docstring."""
    lines = (inspect.cleandoc(vars(cls).get("__doc__") or "")).splitlines()
    assert "Parameters" in lines, f"{cls.__name__} docstring has no Parameters section"
    start = lines.index("Parameters") + 2  # past the heading and its underline
    names = set()
    for line in lines[start:]:
        if line and not line.startswith(" ") and " : " in line:
            names.add(line.split(" : ", 1)[0])
    return names


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_constructor_parameter_is_documented(name: str) -> None:
    owner = _constructor_owner(MODELS[name])
    parameters = [p for p in inspect.signature(vars(owner)["__init__"]).parameters if p != "self"]
    missing = sorted(set(parameters) - _documented_parameters(owner))
    assert not missing, f"{owner.__name__} docstring lacks Parameters entries for {missing}"
