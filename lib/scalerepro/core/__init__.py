"""The fitting core: laws, the objective, the solver, fit, bootstrap, allocation, statistics,
identifiability and design checks -- arrays in, results out -- and where independent tasks
run (in-process or on Dask). Imports only the base modules (errors, diagnostics).
"""
