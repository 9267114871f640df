"""The researcher's own datasets and models: `module.path:function`, imported from the working directory
or the Python path, and what a run records about them (module, function, file, sha256).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import SddError

# `package.module:function`: dotted identifiers, one colon, one identifier.
PLUGIN_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
PLUGIN_SECTIONS = ("data", "model")  # the config sections whose `name` may be a plugin


def is_plugin(name: str) -> bool:
    return ":" in name


def check_spec(name: str, field: str) -> str:
    """`name` itself if it reads as `module.path:function`, else a ValueError naming the form."""
    if not PLUGIN_SPEC.match(name):
        raise ValueError(f"{field}={name!r} is not module.path:function (e.g. my_data:load, for my_data.py)")
    return name


def _import_plugin_module(module_name: str, field: str, spec: str):
    # The `sdd-tui` script's sys.path starts at its own bin folder, not at the working directory.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name != missing and not module_name.startswith(missing + "."):
            raise  # the plugin itself imports something missing: its own traceback says where
        raise SddError(f"{field}={spec!r}: no module {module_name!r} in the working directory ({os.getcwd()}) "
                       f"or on the Python path; run from the folder that holds it or add that folder "
                       f"to PYTHONPATH") from None


# What each plugin is called with: the config section, and for a model the data's shape and class count.
PLUGIN_ARGUMENTS = {"data.name": ("data",), "model.name": ("model", "input_shape", "num_classes")}


def load_function(spec: str, field: str) -> Callable[..., Any]:
    """The function named by `module.path:function`, if it is one of the user's that takes what `field`'s plugin
    is given (PLUGIN_ARGUMENTS); else SddError naming the fix."""
    module_name, _, function_name = spec.partition(":")
    module = _import_plugin_module(module_name, field, spec)
    function = getattr(module, function_name, None)
    if not callable(function):
        where = getattr(module, "__file__", None) or module_name
        raise SddError(f"{field}={spec!r}: {where} has no function {function_name!r}; "
                       f"define it there or fix the name after the colon")
    _check_signature(function, spec, field)
    return function


def _check_signature(function: Callable[..., Any], spec: str, field: str) -> None:
    """A Python function (not one of Python's built-ins: os:getcwd, builtins:exec, sys:exit) that accepts the
    plugin's arguments."""
    arguments = PLUGIN_ARGUMENTS.get(field, ())
    wanted = f"a function of ({', '.join(arguments)}) defined in your module"
    if inspect.isbuiltin(function) or not (inspect.isfunction(function) or inspect.ismethod(function)
                                           or inspect.isclass(function) or hasattr(function, "__wrapped__")):
        raise SddError(f"{field}={spec!r} is {type(function).__name__} {getattr(function, '__name__', '')!r}, "
                       f"not {wanted}; name your own function after the colon")
    try:
        inspect.signature(function).bind(*arguments)
    except TypeError:
        raise SddError(f"{field}={spec!r} takes {inspect.signature(function)}; sdd-tui calls it with "
                       f"({', '.join(arguments)}): name {wanted}") from None
    except ValueError:  # no signature to read (some C extensions): calling it tells
        pass


def call_plugin(function: Callable[..., Any], spec: str, field: str, *arguments: Any) -> Any:
    """`function(*arguments)`; a plugin that calls sys.exit() is one line, not an exit with the config printed."""
    try:
        return function(*arguments)
    except SystemExit as error:
        raise SddError(f"{field}={spec!r} called sys.exit({error.code!r:.60}); return the "
                       f"{'data' if field.startswith('data') else 'model'} instead") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plugin_provenance(config) -> dict[str, str]:
    """Flat `section.plugin_*` strings naming each plugin of an ExperimentConfig: module, function,
    file and the file's sha256, so a run's record says which code produced its data or model."""
    record: dict[str, str] = {}
    for section in PLUGIN_SECTIONS:
        spec = getattr(config, section).name
        if not is_plugin(spec):
            continue
        module_name, _, function_name = spec.partition(":")
        module = sys.modules.get(module_name) or _import_plugin_module(module_name, f"{section}.name", spec)
        file = getattr(module, "__file__", None)
        record[f"{section}.plugin_module"] = module_name
        record[f"{section}.plugin_function"] = function_name
        record[f"{section}.plugin_file"] = str(Path(file).resolve()) if file else ""
        record[f"{section}.plugin_sha256"] = _sha256(Path(file)) if file else ""
    return record
