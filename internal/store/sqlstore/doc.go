// Package sqlstore implements store.Store on database/sql for two engines:
// the embedded SQLite (modernc.org/sqlite, no cgo) and PostgreSQL (pgx).
//
// Vocabulary:
//
//   - Engine: EngineSQLite or EnginePostgres. Open picks it from the
//     database string (EngineOf): a postgres:// or postgresql:// URL is
//     PostgreSQL, anything else a SQLite file path. The SQL text is the same
//     for both: $N placeholders, portable types, ON CONFLICT clauses.
//   - TEXT time: every time is stored as TEXT in the fixed-width UTC format
//     timeFormat, so text comparison and ordering are time comparison and
//     ordering on both engines (PostgreSQL databases use the C collation).
//   - Migration: a numbered SQL file migrations/NNNN_name.sql, embedded,
//     written in SQL both engines run (TEXT times, BOOLEAN, BIGINT); an
//     engine that needs its own SQL for one gets migrations/<engine>/ with
//     the same file name, which replaces it there.
//     Open applies the pending ones in order, each in a transaction recorded
//     in schema_migrations; on PostgreSQL under an advisory lock, so that
//     servers starting together migrate once.
//   - Schema version: the number of the newest applied migration
//     (SchemaVersion); LatestVersion is the newest this program carries.
//   - Conditional claim: an UPDATE whose WHERE re-checks the row's state
//     (job claims, leases, VM busy marks, schedule runs) and whose success
//     is "one row affected". One claimer wins on SQLite (one writer) and on
//     PostgreSQL at READ COMMITTED (the loser re-evaluates the WHERE on the
//     winner's row version).
//   - Dump: the engine-neutral JSON copy of the catalogue (Dump; db export
//     and db import): the schema version and, for every table but
//     schema_migrations, discovered from the schema in foreign-key order, its
//     columns and rows with values normalised by column kind (text, integer,
//     boolean, float). Import loads a dump into an empty database of the
//     same schema version in one transaction, or changes nothing.
package sqlstore
