// Package conformance is the suite every store engine must pass: the same
// inputs through ingest give the same stored state and the same reports on
// PostgreSQL and on SQLite. Its tests run once per engine
// (testenv.Engines).
package conformance
