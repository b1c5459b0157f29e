package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDrainStateSurvivesRestart: the drain is saved at once, so a new
// hostctl on the same state dir (a restart) is still draining, until
// undrained; a broken file says how to get out of it.
func TestDrainStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), drainFile)
	d, err := loadDrain(path)
	if err != nil {
		t.Fatal(err)
	}
	if draining, _ := d.get(); draining {
		t.Fatal("draining without a file")
	}
	before := time.Now()
	if err := d.set(true); err != nil {
		t.Fatal(err)
	}
	again, err := loadDrain(path)
	if err != nil {
		t.Fatal(err)
	}
	draining, since := again.get()
	if !draining || since.Before(before) || since.After(time.Now()) {
		t.Errorf("after a restart: draining %v since %s, want true since the drain", draining, since)
	}
	if err := again.set(false); err != nil {
		t.Fatal(err)
	}
	third, err := loadDrain(path)
	if err != nil {
		t.Fatal(err)
	}
	if draining, _ := third.get(); draining {
		t.Error("still draining after undrain and a restart")
	}

	os.WriteFile(path, []byte("{not json"), 0o640)
	if _, err := loadDrain(path); err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Errorf("a broken drain file: %v, want an error that says what to do", err)
	}
}
