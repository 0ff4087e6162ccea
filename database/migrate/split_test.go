package migrate

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"plain", "create table a (x int);\ncreate table b (y int);\n", []string{"create table a (x int)", "create table b (y int)"}},
		{"no final semicolon", "select 1;select 2", []string{"select 1", "select 2"}},
		{"empty statements dropped", ";;\n ; select 1;;", []string{"select 1"}},
		{"leading comment kept", "-- why\ncreate table a (x int);", []string{"-- why\ncreate table a (x int)"}},
		{"semicolon in line comment", "select 1 -- a; b\n;", []string{"select 1 -- a; b"}},
		{"semicolon in block comment", "select /* a; /* nested; */ b; */ 1;", []string{"select /* a; /* nested; */ b; */ 1"}},
		{"semicolon in string", "select 'a;b', 'it''s;';select 2", []string{"select 'a;b', 'it''s;'", "select 2"}},
		{"semicolon in identifier", `select 1 as "x;y";`, []string{`select 1 as "x;y"`}},
		{
			"dollar-quoted body",
			"create function f() returns int language plpgsql as $$ begin return 1; end; $$;\nselect f();",
			[]string{"create function f() returns int language plpgsql as $$ begin return 1; end; $$", "select f()"},
		},
		{
			"tagged dollar quote with nested $$",
			"do $body$ begin execute $$select 1;$$; end $body$;select 2;",
			[]string{"do $body$ begin execute $$select 1;$$; end $body$", "select 2"},
		},
		{"positional parameter is not a dollar quote", "prepare p as select $1;select 2;", []string{"prepare p as select $1", "select 2"}},
		{"parentheses", "select (select 1);", []string{"select (select 1)"}},
		{
			"begin atomic body",
			"create function f() returns int language sql begin atomic select 1; select 2; end;\nselect 3;",
			[]string{"create function f() returns int language sql begin atomic select 1; select 2; end", "select 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Split(tt.sql); !slices.Equal(got, tt.want) {
				t.Errorf("Split(%q)\n got %q\nwant %q", tt.sql, got, tt.want)
			}
		})
	}
}
