"""Analyses and papers: IsoFLOP and the three Chinchilla approaches, compute accounting,
loss-to-loss, sensitivity, Kaplan's forms and constants, Porian's tables, and the law
registry in which papers register their laws. Imports io, core and base.
"""
