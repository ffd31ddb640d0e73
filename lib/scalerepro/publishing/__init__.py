"""Publishing: replication specs and their verdict rules, result records, the checklist,
figures, HTML reports, the notebook runner, and the reports of a user's own runs.
Imports every layer below; only the CLI sits above it.
"""
