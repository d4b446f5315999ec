"""Entry point of the `gpushield` console script."""

from __future__ import annotations

import typer

from . import demo, dev, keys, secret, usage

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="gpushield: signed, bounded, budgeted access to GPU model endpoints.",
)
app.command("dev")(dev.run)
app.command("demo")(demo.run)
app.add_typer(keys.app, name="keys")
app.add_typer(secret.app, name="secret")
app.command("usage")(usage.run)

if __name__ == "__main__":
    app()
