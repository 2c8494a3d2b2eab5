"""The run wing: loading a target and drawing its outcomes, in this process or in
isolated worker processes (local or on a Dask cluster), and the containment of the
processes that run the allocator's code.

Nothing here imports a check or the report.
"""
