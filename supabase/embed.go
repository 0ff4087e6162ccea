// Package supabase holds the database's source: the plain-Postgres bootstrap,
// the migrations (in the Supabase CLI's file form), the SQL functions that
// every migrate re-applies, the demo seed and the pgTAP tests. The Go binary
// embeds the SQL so `leadrelay migrate` needs nothing beside it.
package supabase

import "embed"

// FS holds bootstrap.sql, seed.sql, migrations/ and functions-sql/.
//
//go:embed bootstrap.sql seed.sql migrations/*.sql functions-sql/*.sql
var FS embed.FS
