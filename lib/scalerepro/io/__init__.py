"""Input and output of data: the registry and loader of upstream files, validation of run
tables, safe unpickling, and reading a user's own runs. Imports the core and the base.
"""
