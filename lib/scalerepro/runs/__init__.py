"""The commands that work on a user's own runs, one module per command, between the
publishing layer (records, reports, figures: rendering only) and the CLI.

Each module orchestrates one command: read the runs (:mod:`scalerepro.io.runs_input`), choose
rows, run the analysis (:mod:`scalerepro.analyses`), gather the diagnostics, build the record
and hand it to :mod:`scalerepro.publishing` to render. ``backtest`` lives here; ``fit``
(``publishing/userfit``, with ``--predict`` in ``publishing/userpredict``), the approaches
(``analyses/userapproaches``) and ``sensitivity`` (``publishing/usersensitivity``) are to move
here too (issue 33's refactor, see docs/design.md).
"""
