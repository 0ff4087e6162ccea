package supabase_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nyaruka/phonenumbers"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// libPhone is what github.com/nyaruka/phonenumbers says of a number typed as
// raw by a visitor of region, with the intake's rules around it: 00 is read
// as +; with + the number must be valid (for the region its digits name),
// without, valid for region.
func libPhone(raw, region string) (string, bool) {
	s := strings.TrimSpace(raw)
	if strings.HasPrefix(strings.TrimLeft(s, " ()"), "00") {
		s = "+" + strings.TrimPrefix(strings.TrimLeft(s, " ()"), "00")
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", false
	}
	valid := phonenumbers.IsValidNumberForRegion(num, region)
	if strings.HasPrefix(s, "+") {
		valid = phonenumbers.IsValidNumber(num)
	}
	if !valid {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// public.parse_phone never stores a number libphonenumber does not find valid,
// nor another number than the one it finds, on every region's example number
// of every type, written nationally, internationally, with 00, with a digit
// more or less, and for the wrong country. Where the library finds a number
// valid and SQL does not verify it, the number is kept as typed and flagged:
// allowed only in the few regions whose national prefix SQL does not handle.
func TestParsePhoneAgreesWithLibphonenumber(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	type tc struct{ raw, region string }
	var cases []tc
	regions := make([]string, 0, 250)
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	for i, region := range regions {
		other := regions[(i+7)%len(regions)]
		for _, typ := range types {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			national := phonenumbers.Format(ex, phonenumbers.NATIONAL)
			intl := phonenumbers.Format(ex, phonenumbers.INTERNATIONAL)
			e164 := phonenumbers.Format(ex, phonenumbers.E164)
			digits := strings.TrimPrefix(e164, "+")
			cases = append(cases,
				tc{national, region}, tc{intl, region}, tc{e164, other}, tc{"00" + digits, region},
				tc{digits, region}, tc{national, other},
				tc{national + "7", region}, tc{national[:len(national)-1], region},
				tc{intl + "7", other}, tc{intl[:len(intl)-1], other})
		}
	}
	cases = append(cases, tc{"050 123 4567", "AE"}, tc{"050 123 4567", "GB"}, tc{"050 123 4567", "US"},
		tc{"+44 (0) 20 7946 0018", "AE"}, tc{"020 7946 0018", "GB"}, tc{"call me maybe", "AE"}, tc{"+", "AE"}, tc{"0", "GB"})

	// The country codes of the regions SQL does not verify (prefix_supported false).
	codeRows, _ := db.Query(ctx, "select distinct country_code::text from leadrelay_private.phone_regions where not prefix_supported")
	unsupported, err := pgx.CollectRows(codeRows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(unsupported) > 10 {
		t.Errorf("SQL leaves %d country codes unverified: %v", len(unsupported), unsupported)
	}

	raws := make([]string, len(cases))
	regs := make([]string, len(cases))
	for i, c := range cases {
		raws[i], regs[i] = c.raw, c.region
	}
	rows, err := db.Query(ctx, `select coalesce(p.e164, ''), p.valid
		from unnest($1::text[], $2::text[]) with ordinality as c(raw, region, n), public.parse_phone(c.raw, c.region) p
		order by c.n`, raws, regs)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var agree, unverified, libValid int
	i := 0
	for rows.Next() {
		var sqlE164 string
		var sqlValid bool
		if err := rows.Scan(&sqlE164, &sqlValid); err != nil {
			t.Fatal(err)
		}
		c := cases[i]
		i++
		libE164, ok := libPhone(c.raw, c.region)
		if ok {
			libValid++
		}
		switch {
		case sqlValid && (!ok || sqlE164 != libE164):
			t.Errorf("parse_phone(%q, %s) = %s, libphonenumber: %q valid %t", c.raw, c.region, sqlE164, libE164, ok)
		case ok && !sqlValid:
			unverified++
			if !slices.ContainsFunc(unsupported, func(cc string) bool { return strings.HasPrefix(libE164, "+"+cc) }) {
				t.Errorf("parse_phone(%q, %s) did not verify %s, of a region SQL handles", c.raw, c.region, libE164)
			}
		default:
			agree++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(cases) {
		t.Fatalf("%d answers for %d numbers", i, len(cases))
	}
	t.Logf("%d numbers: %d answered as libphonenumber does, %d valid for the library but not verified in SQL (of %d valid)",
		len(cases), agree, unverified, libValid)
	for _, want := range []struct {
		raw, region, e164 string
	}{{"050 123 4567", "AE", "+971501234567"}, {"050 123 4567", "GB", ""}, {"050 123 4567", "US", ""}} {
		got, _ := libPhone(want.raw, want.region)
		if got != want.e164 {
			t.Errorf("libphonenumber: %s in %s = %q, want %q", want.raw, want.region, got, want.e164)
		}
	}
}
