package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// State is where a release is in its life.
type State string

const (
	// Building: its code is being put in place and its build steps run.
	// A release still building when the next deploy starts was
	// interrupted (hostctl was killed): it is marked Failed then.
	Building State = "building"
	// Built: ready to go live, never live or live before Previous.
	Built State = "built"
	// Live is the release Dir/current points to.
	Live State = "live"
	// Previous is the release that was live before Live: a rollback's
	// target, never pruned.
	Previous State = "previous"
	// Failed: its code or a build step failed; current was not touched.
	Failed State = "failed"
	// Pruned: removed from disk to keep [deploy] keep releases.
	Pruned State = "pruned"
)

// Release is one release, as recorded in the state dir.
type Release struct {
	// ID is its directory name under Dir/releases: "<UTC time>-<short sha>".
	ID string `json:"id"`
	// SHA is the git commit, or the SHA-256 of a --from tarball; "" for
	// --from a directory.
	SHA string `json:"sha,omitempty"`
	// Source says where the code came from: "git REPO REF", "dir PATH",
	// "tarball PATH".
	Source string `json:"source"`
	// Created is when its preparation started.
	Created time.Time `json:"created"`
	// Duration is how long its preparation (code, shared links, build
	// steps) took.
	Duration time.Duration `json:"duration"`
	State    State         `json:"state"`
	// Error is why it failed: the step, its exit status, its last lines.
	Error string `json:"error,omitempty"`
	// Slot is the blue/green slot ("a" or "b") its blue_green programs
	// ran in when it went live; "" for a release never live, or without
	// blue_green programs.
	Slot string `json:"slot,omitempty"`
	// Since is when it last went live (ActivateSlot); zero for a release
	// never live, or recorded before hostctl kept it.
	Since time.Time `json:"since,omitzero"`
}

// Switch records a switch under way: from the moment the proxy may send
// a visitor to the new slot until current and the state have moved (or
// the switch was undone). A switch still recorded when hostctl starts
// was interrupted (kill -9); the record says where each slot was.
type Switch struct {
	Release string    `json:"release"`
	From    string    `json:"from"` // the slot live before
	To      string    `json:"to"`   // the new release's slot
	Since   time.Time `json:"since"`
}

// stateFile is what the state dir records: every release, oldest first,
// and the switch under way, if any.
type stateFile struct {
	Releases  []Release `json:"releases"`
	Switching *Switch   `json:"switching,omitempty"`
}

// validID is what Host ever names a release dir; an ID read back is
// checked against it before it becomes part of a path root removes.
var validID = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-z]{1,12}(-[0-9]{1,3})?$`)

func (h *Host) statePath() string { return filepath.Join(h.stateDir, "releases.json") }

// load reads the recorded releases (none when the file does not exist).
// The file is hostctl's own (trust.ReadOwnFile): one planted there, a
// link or a file of another user, is refused.
func (h *Host) load() (*stateFile, error) {
	data, err := trust.ReadOwnFile(h.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return &stateFile{}, nil
	}
	if err != nil {
		return nil, err
	}
	var s stateFile
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", h.statePath(), err)
	}
	for _, r := range s.Releases {
		if !validID.MatchString(r.ID) {
			return nil, fmt.Errorf("%s: release id %q is not one hostctl makes; the file was changed by hand", h.statePath(), r.ID)
		}
	}
	return &s, nil
}

// save replaces the state file atomically (trust.WriteOwnFile: a temp
// file made with O_EXCL, then renamed).
func (h *Host) save(s *stateFile) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return trust.WriteOwnFile(h.statePath(), append(data, '\n'), 0o600)
}

// update loads the state, applies fn and saves it.
func (h *Host) update(fn func(s *stateFile) error) error {
	s, err := h.load()
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		return err
	}
	return h.save(s)
}

func (s *stateFile) find(id string) *Release {
	i := slices.IndexFunc(s.Releases, func(r Release) bool { return r.ID == id })
	if i < 0 {
		return nil
	}
	return &s.Releases[i]
}
