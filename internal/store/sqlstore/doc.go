// Package sqlstore implements store.Store on database/sql. The SQL text uses
// $N placeholders and portable types, so one text serves the embedded SQLite
// (modernc.org/sqlite, no cgo) and, later, PostgreSQL. Schema changes are
// numbered SQL files under migrations/<engine>/ applied in order at Open and
// recorded in schema_migrations.
package sqlstore
