"""The commands that work on a user's own runs, one module per command, between the
publishing layer (records, reports, figures: rendering only) and the CLI.

Each module orchestrates one command: read the runs (:mod:`scalerepro.io.runs_input`), choose
rows, run the analysis (:mod:`scalerepro.analyses`), gather the diagnostics, build the record
and hand it to :mod:`scalerepro.publishing` to render:

- :mod:`.fit`: ``scalerepro fit`` (with :mod:`.predict` for ``--predict``,
  :mod:`.dataconstrained` for ``--form data_constrained`` and :mod:`.chained` for ``--metric``);
- :mod:`.approaches`: ``scalerepro fit --approach 1|2|all``, Chinchilla's approaches 1 and 2;
- :mod:`.sensitivity`: ``scalerepro sensitivity``;
- :mod:`.backtest`: ``scalerepro backtest``.
"""
