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
	"regexp/syntax"
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
  -- then any number type's (lengths as lookahead constraints, then its pattern). A length
  -- constraint that the pattern after it implies is left out: it changes no answer and
  -- costs a match as much as the rest.
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
			types = append(types, lengthsAhead(d.PossibleLength, d.GetNationalNumberPattern())+"(?:"+d.GetNationalNumberPattern()+")")
		}
		valid := "^" + lengthsAhead(general.PossibleLength, general.GetNationalNumberPattern()) +
			"(?=(?:" + general.GetNationalNumberPattern() + ")$)(?:" + strings.Join(types, "|") + ")$"
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
// lengths digits: "" when any length will do, as libphonenumber reads an empty
// list, and "" when pattern, which must match the whole number after it,
// matches only strings of those lengths. Such a constraint changes no answer
// (parse_phone matches only strings of ASCII digits), and each costs a
// match as much as the rest of it (issue #14).
func lengthsAhead(lengths []int32, pattern string) string {
	if len(lengths) == 0 || lengthsImplied(lengths, pattern) {
		return ""
	}
	parts := make([]string, len(lengths))
	for i, n := range lengths {
		parts[i] = fmt.Sprintf("[0-9]{%d}$", n)
	}
	return "(?=" + strings.Join(parts, "|") + ")"
}

// lengthsImplied tells whether every string pattern matches has one of lengths.
func lengthsImplied(lengths []int32, pattern string) bool {
	var allowed uint64
	for _, n := range lengths {
		if n < 0 || n > 63 {
			return false
		}
		allowed |= 1 << n
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	matched, ok := matchLengths(re)
	return ok && matched&^allowed == 0
}

// matchLengths is the set of lengths, in characters, of the strings re matches,
// as bits 0 to 63; ok is false when it cannot tell (an unbounded repetition, a
// length past 63).
func matchLengths(re *syntax.Regexp) (set uint64, ok bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 1, true
	case syntax.OpLiteral:
		if len(re.Rune) > 63 {
			return 0, false
		}
		return 1 << len(re.Rune), true
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return 1 << 1, true
	case syntax.OpCapture:
		return matchLengths(re.Sub[0])
	case syntax.OpQuest:
		set, ok = matchLengths(re.Sub[0])
		return set | 1, ok
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			s, ok := matchLengths(sub)
			if !ok {
				return 0, false
			}
			set |= s
		}
		return set, true
	case syntax.OpConcat:
		set = 1
		for _, sub := range re.Sub {
			s, ok := matchLengths(sub)
			if !ok {
				return 0, false
			}
			if set, ok = sumLengths(set, s); !ok {
				return 0, false
			}
		}
		return set, true
	case syntax.OpRepeat:
		if re.Max < 0 {
			return 0, false
		}
		s, ok := matchLengths(re.Sub[0])
		if !ok {
			return 0, false
		}
		times := uint64(1) // the lengths of k repetitions, from k = 0
		for k := 0; k <= re.Max; k++ {
			if k >= re.Min {
				set |= times
			}
			if times, ok = sumLengths(times, s); !ok {
				return 0, false
			}
		}
		return set, true
	}
	return 0, false
}

// sumLengths is {x + y | x in a, y in b}; ok is false past 63.
func sumLengths(a, b uint64) (sum uint64, ok bool) {
	for x := 0; x < 64; x++ {
		if a&(1<<x) == 0 {
			continue
		}
		for y := 0; y < 64; y++ {
			if b&(1<<y) == 0 {
				continue
			}
			if x+y > 63 {
				return 0, false
			}
			sum |= 1 << (x + y)
		}
	}
	return sum, true
}
