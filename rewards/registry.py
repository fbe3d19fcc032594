"""Verifiers by name: built-ins, `module:function`, `/path/file.py:function`, entry points.

A verifier is a plain function `(response, gold) -> bool | float` (1.0/True = correct).
Configs name one with a single string, e.g. `reward.verifier: math` or
`reward.verifier: my_pkg.checks:strict_equal`; `resolve_verifier` turns that string
into the callable. The forms, tried in this order:

- `"module.path:attr"`: imported with importlib (`attr` may be dotted: `Class.method`);
- `"/path/to/file.py:attr"`: the file is loaded as a module (once per path);
- a name registered in this process with `@register_verifier("name")`;
- a built-in name (`BUILTIN_VERIFIERS`);
- a name from the `mathrl.verifiers` entry-point group of an installed package.

A verifier may also be an `AnswerVerifier`: a final-answer extractor plus a comparison of
that answer with the gold. Calling it is the plain verifier; `BatchVerifier` additionally
uses the halves to cache verdicts by (extracted answer, gold) and to grade answers that are
already extracted. Plain functions work too, without those two extras.

Importing this module is cheap: built-ins are resolved (and sympy imported) on first use.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Verifier = Callable[[str, str], "bool | float"]

ENTRY_POINT_GROUP = "mathrl.verifiers"

# Built-in names are aliases of importable specs, so workers resolve them like any other.
BUILTIN_VERIFIERS: dict[str, str] = {
    "math": "rewards.builtin_verifiers:math",
    "multiple_choice": "rewards.builtin_verifiers:multiple_choice",
    "integer": "rewards.builtin_verifiers:integer",
}

SPEC_FORMS = (
    "a built-in name, a name registered with @register_verifier or in the "
    f"'{ENTRY_POINT_GROUP}' entry-point group, 'module.path:function', or '/path/to/file.py:function'"
)


@dataclass(frozen=True)
class AnswerVerifier:
    """`extract(response) -> answer | None`, then `compare(answer, gold) -> bool | float`.

    The verdict must depend only on the extracted answer and the gold (that is what makes
    caching by that pair sound). A response with no extractable answer is incorrect and
    `compare` is not called.
    """

    extract: Callable[[str], str | None]
    compare: Callable[[str, str], bool | float]

    def __call__(self, response: str, gold: str) -> bool | float:
        answer = self.extract(response)
        return False if answer is None else self.compare(answer, gold)


@dataclass(frozen=True)
class _Registration:
    verifier: Verifier
    module: str | None  # workers load it to re-run the registration: a module name or a .py path
    site: tuple[str, int]  # file and line of the register_verifier call


_REGISTERED: dict[str, _Registration] = {}
_FILE_MODULE_PREFIX = "_mathrl_verifier_"  # module names given to verifier files loaded by path
_FILE_MODULES: dict[Path, object] = {}
_LOCK = threading.RLock()  # reentrant: loading a file may run @register_verifier


def register_verifier(name: str) -> Callable[[Verifier], Verifier]:
    """Decorator: make `fn` resolvable as `name` in this process.

    Worker processes import the registering module again to find it, so register in an
    importable module (or the main script, which spawned workers re-import), not in a
    notebook cell. Names must be new: shadowing a built-in or an earlier registration is
    an error, since a config naming it would silently change meaning.
    """
    if not name or ":" in name:
        raise ValueError(f"verifier name {name!r} must be non-empty and contain no ':'")
    caller = sys._getframe(1)
    module = caller.f_globals.get("__name__")
    site = (os.path.realpath(caller.f_code.co_filename), caller.f_lineno)
    if isinstance(module, str) and module.startswith(_FILE_MODULE_PREFIX):
        module = site[0]  # a file loaded by path: its module name exists only in this process

    def decorator(fn: Verifier) -> Verifier:
        if not callable(fn):
            raise TypeError(f"register_verifier({name!r}) needs a callable, got {type(fn).__name__}")
        with _LOCK:
            known = _REGISTERED.get(name)
            # The same registration line running again (a file loaded both by path and by
            # module name, a worker re-running `__main__`) re-registers; anything else clashes.
            if name in BUILTIN_VERIFIERS or (known is not None and known.site != site):
                raise ValueError(f"verifier name {name!r} is already taken; pick another name")
            _REGISTERED[name] = _Registration(fn, module, site)
        return fn

    return decorator


def resolve_verifier(spec: str) -> Verifier:
    """The callable named by `spec` (see the module docstring); ValueError if it cannot be found."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"verifier spec must be a non-empty string: {SPEC_FORMS}; got {spec!r}")
    spec = spec.strip()
    if ":" in spec:
        location, _, attr = spec.rpartition(":")
        if not location or not attr:
            raise ValueError(f"verifier spec {spec!r} must look like 'module.path:function' or '/path/file.py:function'")
        module = _load_file(location, spec) if _is_path(location) else _import_module(location, spec)
        return _checked(_get_attr(module, attr, spec), spec)
    with _LOCK:
        registered = _REGISTERED.get(spec)
    if registered is not None:
        return registered.verifier
    if spec in BUILTIN_VERIFIERS:
        return resolve_verifier(BUILTIN_VERIFIERS[spec])
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == spec:
            try:
                return _checked(entry_point.load(), spec)
            except Exception as err:
                raise ValueError(f"verifier {spec!r} (entry point {entry_point.value}) failed to load: {_describe(err)}") from err
    known = sorted({*BUILTIN_VERIFIERS, *_REGISTERED, *(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))})
    raise ValueError(f"unknown verifier {spec!r}; known names: {', '.join(known)}. A verifier spec is {SPEC_FORMS}")


def registering_module(spec: str) -> str | None:
    """The module whose import registers `spec` with @register_verifier (None if not registered)."""
    with _LOCK:
        registered = _REGISTERED.get(spec.strip()) if isinstance(spec, str) else None
    return registered.module if registered else None


def load_registering_module(location: str) -> None:
    """Run a registering module (from `registering_module`) in this process, e.g. a worker."""
    if _is_path(location):
        _load_file(location, location)
    else:
        importlib.import_module(location)


def _is_path(location: str) -> bool:
    return location.endswith(".py") or "/" in location or "\\" in location


def _import_module(name: str, spec: str) -> object:
    try:
        return importlib.import_module(name)
    except Exception as err:
        raise ValueError(f"verifier spec {spec!r}: cannot import module {name!r} ({_describe(err)})") from err


def _load_file(location: str, spec: str) -> object:
    path = Path(location).expanduser().resolve()
    with _LOCK:
        if path in _FILE_MODULES:
            return _FILE_MODULES[path]
        if not path.is_file():
            raise ValueError(f"verifier spec {spec!r}: no such file {str(path)!r}")
        # A stable, path-derived name: dataclasses and pickling need the module in sys.modules.
        name = f"{_FILE_MODULE_PREFIX}{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"verifier spec {spec!r}: {str(path)!r} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[name]
            raise ValueError(f"verifier spec {spec!r}: loading {str(path)!r} failed ({_describe(err)})") from err
        _FILE_MODULES[path] = module
        return module


def _get_attr(module: object, attr: str, spec: str) -> object:
    value = module
    for part in attr.split("."):
        if not hasattr(value, part):
            public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
            raise ValueError(f"verifier spec {spec!r}: no attribute {attr!r}; callables there: {', '.join(public) or 'none'}")
        value = getattr(value, part)
    return value


def _checked(value: object, spec: str) -> Verifier:
    if not callable(value):
        raise ValueError(f"verifier spec {spec!r} names a {type(value).__name__}, not a function (response, gold) -> bool | float")
    return value  # type: ignore[return-value]


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"
