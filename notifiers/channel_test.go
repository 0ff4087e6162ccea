package notifiers

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sqlEnum returns the values of the SQL enum type name as the migrations
// create it, or skips the test while no migration does.
func sqlEnum(t *testing.T, name string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?is)create\s+type\s+(?:public\.)?"?` + name + `"?\s+as\s+enum\s*\(([^)]*)\)`)
	files, err := filepath.Glob("../supabase/migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, f := range files {
		sql, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(sql)
		if m == nil {
			continue
		}
		values = nil
		for _, v := range strings.Split(string(m[1]), ",") {
			values = append(values, strings.Trim(strings.TrimSpace(v), "'"))
		}
	}
	if values == nil {
		t.Skipf("no migration creates %s yet", name)
	}
	return values
}

// The Go names must be the SQL enum's values, in its order: the dispatcher
// writes them into notification_logs.channel.
func TestChannelsMatchSQLEnum(t *testing.T) {
	t.Parallel()
	var channels []string
	for _, c := range Channels() {
		channels = append(channels, string(c))
	}
	if sql := sqlEnum(t, "notification_channel"); !slices.Equal(sql, channels) {
		t.Errorf("SQL enum notification_channel = %q, Channels() = %q", sql, channels)
	}
}

// Every kind an alert can be about is a lead_event_type the dispatcher reads.
func TestKindsAreLeadEventTypes(t *testing.T) {
	t.Parallel()
	sql := sqlEnum(t, "lead_event_type")
	for _, k := range Kinds() {
		if !slices.Contains(sql, string(k)) {
			t.Errorf("Kind %q is not a value of lead_event_type %q", k, sql)
		}
	}
}
