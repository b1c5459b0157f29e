package cli

import (
	"strings"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
)

// hostctl check's summary counts the checks, when there are any.
func TestCheckSummaryCountsChecks(t *testing.T) {
	head := "[admin]\nsocket = \"/tmp/hostctl-sum.sock\"\nstate_dir = \"/tmp/hostctl-sum\"\n[log]\ndir = \"/tmp/hostctl-sum-log\"\n[program.web]\ncommand = \"/bin/sleep 1000\"\n"
	f, err := config.Parse("a.toml", []byte(head+"[check.db]\ntcp = \"db:5432\"\n[check.search]\nhttp = \"http://search:9200/\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := summary(f); !strings.HasPrefix(s, "1 programs (1 autostart), 2 checks of services hostctl does not run, logs in ") {
		t.Errorf("summary = %q", s)
	}
	f, err = config.Parse("a.toml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	if s := summary(f); strings.Contains(s, "check") {
		t.Errorf("summary without checks = %q", s)
	}
}
