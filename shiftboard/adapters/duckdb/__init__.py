"""DuckDB: the gateway's catalog (``catalog``: schema, migrations, registry rows) and the per-sample
prediction store (``evaluations``). Only the gateway process opens the file."""
