"""The local backend, the embedded default: subprocess steps, a SQLite registry, local
endpoint servers and stage deploys under $MLOPS_HOME. No AWS, no Docker."""
