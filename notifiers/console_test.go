package notifiers

import (
	"strings"
	"testing"
)

func TestConsolePrintsTheAlert(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	c := NewConsole(&out)
	if err := c.Send(t.Context(), testAlert()); err != nil {
		t.Fatal(err)
	}
	want := "--- alert lead.created (lead 0b8e6f7a-58a4-4d0e-8d55-3f2a1c9b7e10)\n" +
		"  New HOT lead: " + hostileName + "\n" +
		"  \n" +
		"  Email: zoe+test@example.com\n"
	if !strings.HasPrefix(out.String(), want) || !strings.HasSuffix(out.String(), "  Open in admin panel: "+wantLink+"\n") {
		t.Errorf("console printed\n%s\nwant it to start with\n%s", out.String(), want)
	}
}
