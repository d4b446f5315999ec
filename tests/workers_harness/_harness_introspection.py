"""Harness re-implementation of workerd's internal introspection module.

workerd runs a module like this (not importable by user code) to find the entrypoint classes of
the main module and to call their methods with Workers-RPC argument/return conversion. It is
executed into a fresh ModuleType by host.mjs after the main module has been imported, so the
`workers` SDK it imports is the one vendored in the bundle's python_modules/.
"""

from inspect import isawaitable, isclass

import js
from pyodide.code import relaxed_call
from pyodide.ffi import to_js
from workers import (
    DurableObject,
    WorkerEntrypoint,
    WorkflowEntrypoint,
    python_from_rpc,
    python_to_rpc,
)


def _public_methods(cls):
    return [
        name
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name, None))
    ]


def _classes(user_mod, base):
    # Same rule as workerd: honour __all__, else every public name; subclasses only.
    if hasattr(user_mod, "__all__"):
        names = list(user_mod.__all__)
    else:
        names = [n for n in dir(user_mod) if not n.startswith("_")]
    found = []
    for name in names:
        val = getattr(user_mod, name, None)
        if isclass(val) and issubclass(val, base) and val is not base:
            found.append({"className": name, "methodNames": _public_methods(val)})
    return found


def collect_entrypoint_classes(user_mod):
    return to_js(
        {
            "durableObjects": _classes(user_mod, DurableObject),
            "workerEntrypoints": _classes(user_mod, WorkerEntrypoint),
            "workflowEntrypoints": _classes(user_mod, WorkflowEntrypoint),
        },
        dict_converter=js.Object.fromEntries,
    )


async def wrapper_func(relaxed, inst, prop, *args, **kwargs):
    """Call inst.prop the way workerd does for handlers (relaxed) and RPC methods (strict).

    Arguments go through python_from_rpc (a JS Request becomes workers.Request, objects become
    dicts); the result goes through python_to_rpc (workers.Response unwraps to the JS Response).
    relaxed_call drops surplus positional arguments the method does not accept, which is how
    `async def fetch(self, request)` can ignore the extra arguments the runtime passes.
    """
    method = getattr(inst, prop)
    py_args = [python_from_rpc(a) for a in args]
    py_kwargs = {k: python_from_rpc(v) for k, v in kwargs.items()}
    if relaxed:
        result = relaxed_call(method, *py_args, **py_kwargs)
    else:
        result = method(*py_args, **py_kwargs)
    if isawaitable(result):
        result = await result
    return python_to_rpc(result)


async def call_special(inst, prop, *args):
    """DO special handlers (alarm, webSocket*) are called directly in relaxed mode."""
    result = relaxed_call(getattr(inst, prop), *args)
    if isawaitable(result):
        result = await result
    return result


def has_method(inst, prop):
    return callable(getattr(inst, prop, None))
