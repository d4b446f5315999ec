"""`gpushield dev`: the local gate on uvicorn, on its embedded defaults unless told otherwise."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from gpushield_edge.runtime_local.app import LocalGate, default_config_text, load_config_document
from gpushield_edge.runtime_local.asgi import GateASGI
from gpushield_edge.runtime_local.state import StateDir

from ._common import STATE_DIR_OPTION, console, fail, one_line_errors

CONFIG_OPTION = typer.Option(
    None, "--config", "-c", envvar="GPUSHIELD_CONFIG",
    help="gpushield.toml; settings it omits keep the embedded defaults.",
)


def build_app(config: Path | None, state_dir: Path) -> GateASGI:
    document = load_config_document(config)
    state = StateDir(state_dir).ensure()
    # Built before the server starts, so configuration errors surface as one line; the
    # server's lifespan then serves and closes this same gate.
    local = LocalGate.build(document, state, os.environ)
    return GateASGI(lambda: local)


@one_line_errors
def run(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8787, help="Port to listen on."),
    config: Path | None = CONFIG_OPTION,
    state_dir: Path = STATE_DIR_OPTION,
    print_config: bool = typer.Option(False, "--print-config",
                                      help="Print the embedded default config and exit."),
) -> None:
    """Run the local gate (ASGI on uvicorn) in front of the configured backends."""
    if print_config:
        print(default_config_text(), end="")
        return
    import uvicorn

    if config is not None and not config.exists():
        raise fail(f"config file {config} does not exist")
    app = build_app(config, state_dir)
    console.print(
        f"gpushield gate on [bold]http://{host}:{port}[/] · config: "
        f"{config or 'embedded defaults'} · state: {state_dir}", highlight=False,
    )
    logging.getLogger("gpushield").setLevel(logging.INFO)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
