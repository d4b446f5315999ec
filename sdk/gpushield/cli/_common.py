"""What every command shares: the state dir option and one-line errors instead of tracebacks."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

# Piped or captured output (CI logs, `| tee`) gets a width that fits the demo's table instead
# of rich's 80-column fallback; a terminal keeps its own width.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

STATE_DIR_OPTION = typer.Option(
    Path(".gpushield"), "--state-dir", envvar="GPUSHIELD_STATE_DIR",
    help="Where the local gate keeps keys, audit log and its key-encryption key.",
)


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def one_line_errors(function: F) -> F:
    """Known failures print one line and exit non-zero; nothing a user typed is echoed
    beyond what they need to fix it, and no traceback is shown."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from gpushield_edge.admin.service import KeyAdminError
        from gpushield_edge.keyguard.guard import KeyGuardError

        try:
            return function(*args, **kwargs)
        except (KeyGuardError, KeyAdminError, ValueError, OSError) as error:
            raise fail(str(error)) from None

    return wrapper  # type: ignore[return-value]
