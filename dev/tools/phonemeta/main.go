// Command phonemeta writes libphonenumber's metadata, as
// github.com/nyaruka/phonenumbers carries it, into a SQL migration that
// fills leadrelay_private.phone_regions, the table public.parse_phone reads.
// So both intake paths (the Go intake and PostgREST's RPC) decide a phone
// number's validity in SQL by libphonenumber's own rules, and the Go tests
// compare the two on every region's example numbers.
//
// Run from the repository root when the library is upgraded, into a new
// migration that replaces the table:
//
//	go run ./dev/tools/phonemeta > supabase/migrations/<timestamp>_phone_metadata.sql
package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "phonemeta:", err)
		os.Exit(1)
	}
}

// prefixSupported tells the national-prefix patterns that Postgres's regular
// expressions match exactly as Java's and Go's do: fixed alternatives, with
// no optional or variable-length parts, so leftmost-longest and
// leftmost-first agree on the match. A region with another pattern is never
// verified in SQL (its numbers are kept as typed, unverified).
func prefixSupported(p string) bool {
	q := strings.ReplaceAll(p, "(?:", "(")
	return !strings.ContainsAny(q, "?*+") && !regexp.MustCompile(`\{\d*,\d*\}`).MatchString(q)
}

func run(w io.Writer) error {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return fmt.Errorf("load metadata: %w", err)
	}
	version := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/nyaruka/phonenumbers" {
				version = dep.Version
			}
		}
	}
	fmt.Fprintf(w, `-- libphonenumber's metadata (github.com/nyaruka/phonenumbers %s), written by
-- go run ./dev/tools/phonemeta: the rules public.parse_phone checks a phone number against.
-- Generated; do not edit. A newer library version is a new migration that replaces the rows.

-- The table is made anew (cascade: the functions taking its rows are created again by
-- functions-sql after the migrations).
drop table if exists leadrelay_private.phone_regions cascade;
create table leadrelay_private.phone_regions (
  region text primary key,                   -- ISO 3166 alpha-2
  country_code integer not null,
  ord integer not null,                      -- libphonenumber's order among the regions of the code (main first)
  leading_digits text,                       -- the national numbers of this region, for a shared code
  national_prefix text,                      -- national_prefix_for_parsing, anchored, or null
  national_prefix_groups integer not null,   -- capturing groups in national_prefix
  national_prefix_transform text,            -- the transform rule, \1 for $1, or null
  prefix_supported boolean not null,         -- false: SQL does not verify this region's numbers
  general_pattern text not null,             -- anchored
  general_lengths integer[] not null,
  local_lengths integer[] not null,
  -- A valid national number in one match: the general description's lengths and pattern,
  -- then any number type's (lengths as lookahead constraints, then its pattern).
  valid_pattern text not null
);
create index phone_regions_country_code_idx on leadrelay_private.phone_regions (country_code, ord);
revoke all on leadrelay_private.phone_regions from public, anon, authenticated, service_role;

insert into leadrelay_private.phone_regions values
`, version)
	var rows []string
	for _, m := range coll.Metadata {
		region := m.GetId()
		if len(region) != 2 {
			continue // non-geographic entities (001): not a country a visitor is in
		}
		cc := int(m.GetCountryCode())
		ord := slices.Index(phonenumbers.GetRegionCodesForCountryCode(cc), region)
		if ord < 0 {
			return fmt.Errorf("region %s is not listed for +%d", region, cc)
		}
		prefix := m.GetNationalPrefixForParsing()
		groups := 0
		if prefix != "" {
			re, err := regexp.Compile(prefix)
			if err != nil {
				return fmt.Errorf("region %s: national prefix %q: %w", region, prefix, err)
			}
			groups = re.NumSubexp()
		}
		transform := regexp.MustCompile(`\$(\d)`).ReplaceAllString(m.GetNationalPrefixTransformRule(), `\$1`)
		general := m.GetGeneralDesc()
		var types []string
		for _, d := range []*phonenumbers.PhoneNumberDesc{m.PremiumRate, m.TollFree, m.SharedCost, m.Voip,
			m.PersonalNumber, m.Pager, m.Uan, m.Voicemail, m.FixedLine, m.Mobile} {
			if d == nil || d.GetNationalNumberPattern() == "" || d.GetNationalNumberPattern() == "NA" || slices.Contains(d.PossibleLength, -1) {
				continue // a type the region does not have
			}
			types = append(types, lengthsAhead(d.PossibleLength)+"(?:"+d.GetNationalNumberPattern()+")")
		}
		valid := "^" + lengthsAhead(general.PossibleLength) + "(?=(?:" + general.GetNationalNumberPattern() + ")$)(?:" + strings.Join(types, "|") + ")$"
		if len(types) == 0 {
			valid = "^$.^" // no number type: nothing is valid
		}
		rows = append(rows, fmt.Sprintf("  (%s, %d, %d, %s, %s, %d, %s, %t, %s, %s, %s, %s)",
			sqlString(region), cc, ord, sqlNullable(m.GetLeadingDigits()),
			sqlNullable(anchoredStart(prefix)), groups, sqlNullable(transform), prefix == "" || prefixSupported(prefix),
			sqlString(anchored(general.GetNationalNumberPattern())), sqlInts(general.PossibleLength), sqlInts(general.PossibleLengthLocalOnly),
			sqlString(valid)))
	}
	slices.Sort(rows)
	fmt.Fprintln(w, strings.Join(rows, ",\n")+";")
	return nil
}

func anchored(p string) string { return "^(?:" + p + ")$" }

func anchoredStart(p string) string {
	if p == "" {
		return ""
	}
	return "^(?:" + p + ")"
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func sqlNullable(s string) string {
	if s == "" {
		return "null"
	}
	return sqlString(s)
}

func sqlInts(v []int32) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(int(n))
	}
	return "'{" + strings.Join(parts, ",") + "}'"
}

// lengthsAhead is a lookahead constraint that the whole number has one of
// lengths digits ("" when any length will do, as libphonenumber reads an
// empty list).
func lengthsAhead(lengths []int32) string {
	if len(lengths) == 0 {
		return ""
	}
	parts := make([]string, len(lengths))
	for i, n := range lengths {
		parts[i] = fmt.Sprintf("[0-9]{%d}$", n)
	}
	return "(?=" + strings.Join(parts, "|") + ")"
}
