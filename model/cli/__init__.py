"""Command-line verbs of the model stage: train, calibrate, evaluate, model-card, experiments.

One module per family of verbs; `register` adds them to the ``nowcast`` command.
"""

from __future__ import annotations

import typer

from model.cli.evaluate_cmd import calibrate, evaluate
from model.cli.report_cmd import model_card, moving_digits
from model.cli.train_cmd import synth_corpus, train


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("synth-corpus")(synth_corpus)
    app.command()(calibrate)
    app.command()(evaluate)
    app.command("model-card")(model_card)
    experiments = typer.Typer(help="The method's experiments beside radar.", no_args_is_help=True)
    experiments.command("moving-digits")(moving_digits)
    app.add_typer(experiments, name="experiment")
