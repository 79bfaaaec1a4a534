"""The face library on PostgreSQL + pgvector: the hub past one machine (docs/scale.md)."""
