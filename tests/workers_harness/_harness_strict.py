"""Top-level entropy guard (strict mode), Python side.

workerd imports the main module at *deploy* time and snapshots memory, so randomness taken at
import time would be baked into every instance; it therefore makes os.urandom / random / secrets
raise "Disallowed operation called within global scope" while the top level runs. We install
permanent wrappers that consult a flag, rather than swapping functions in and out, because user
code may capture them at import (`from os import urandom`, `from random import randint`) and those
captured references must work normally once the top level has finished.
"""

import functools
import os
import random

MESSAGE = "Disallowed operation called within global scope"
_state = {"active": False}


class DisallowedInGlobalScope(RuntimeError):
    pass


def _guard(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _state["active"]:
            raise DisallowedInGlobalScope(MESSAGE)
        return fn(*args, **kwargs)

    wrapper._harness_guarded = True
    return wrapper


def _install():
    if getattr(os.urandom, "_harness_guarded", False):
        return
    os.urandom = _guard(os.urandom)
    # random.SystemRandom (and so `secrets`) reads random._urandom at call time.
    random._urandom = _guard(random._urandom)
    # Module-level random.* functions are bound methods of a Mersenne Twister seeded at import;
    # they do not touch os.urandom, so guard them individually (seed is deterministic, allowed).
    for name in (
        "random", "uniform", "triangular", "randint", "choice", "randrange", "sample",
        "shuffle", "choices", "normalvariate", "lognormvariate", "expovariate",
        "vonmisesvariate", "gammavariate", "gauss", "betavariate", "paretovariate",
        "weibullvariate", "getrandbits", "randbytes", "binomialvariate",
    ):
        if hasattr(random, name):
            setattr(random, name, _guard(getattr(random, name)))
    import secrets  # noqa: F401  (imported now so its own import never runs under the guard)


def enter():
    _install()
    _state["active"] = True


def leave():
    _state["active"] = False
