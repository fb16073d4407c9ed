"""DuckDB: the gateway's catalog (``catalog``: schema, migrations, registry rows) and the per-sample
prediction store (``evaluations``). Only the gateway process opens the file.

``database`` holds the connection and ``errors`` the one translation of DuckDB's exceptions;
``schema`` the migrations; ``access``, ``registry`` and ``imported`` the catalog's tables by concern;
``checks``, ``commits`` and ``reads`` the predictions' way in and out; ``keys`` the names they share.
"""
