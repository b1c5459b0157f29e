package hostwatch

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sampleMeminfo is the head of a real /proc/meminfo (Linux 6.x).
const sampleMeminfo = `MemTotal:       24683656 kB
MemFree:        23153912 kB
MemAvailable:   24188724 kB
Buffers:           21952 kB
Cached:           936068 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    MemoryInfo
		wantErr string
	}{
		{name: "real", in: sampleMeminfo, want: MemoryInfo{Total: 24683656 * 1024, Available: 24188724 * 1024}},
		{name: "available first", in: "MemAvailable: 2 kB\nMemTotal: 4 kB\n", want: MemoryInfo{Total: 4096, Available: 2048}},
		{name: "old kernel", in: "MemTotal: 4 kB\nMemFree: 1 kB\n", wantErr: "no MemAvailable line"},
		{name: "empty", in: "", wantErr: "no MemTotal line"},
		{name: "garbage value", in: "MemTotal: lots kB\nMemAvailable: 1 kB\n", wantErr: `MemTotal: "lots kB" is not a number of kB`},
		{name: "other unit", in: "MemTotal: 4 MB\nMemAvailable: 1 kB\n", wantErr: `MemTotal: "4 MB" is not a number of kB`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMeminfo(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMemory(t *testing.T) {
	mi, err := Memory()
	if err != nil {
		t.Fatal(err)
	}
	if mi.Total == 0 || mi.Available == 0 || mi.Available > mi.Total {
		t.Errorf("Memory() = %+v; want 0 < Available <= Total", mi)
	}
}

func TestDisk(t *testing.T) {
	dir := t.TempDir()
	d, err := Disk(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Path != dir || d.Size == 0 || d.Free == 0 || d.Free > d.Size {
		t.Errorf("Disk(%q) = %+v; want the path and 0 < Free <= Size", dir, d)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dev := uint64(fi.Sys().(*syscall.Stat_t).Dev); d.Device != dev {
		t.Errorf("Device = %d, want st_dev %d", d.Device, dev)
	}

	// A file on the same filesystem reports the same filesystem.
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := Disk(file); err != nil || f.Device != d.Device || f.Size != d.Size {
		t.Errorf("Disk(%q) = %+v, %v; want the same filesystem as %+v", file, f, err, d)
	}

	// df agrees on the size (free space may move between the two calls).
	df, err := exec.LookPath("df")
	if err != nil {
		t.Skip("no df to compare with")
	}
	out, err := exec.Command(df, "-B1", "--output=size", dir).Output()
	if err != nil {
		t.Skipf("df -B1 --output=size: %v", err)
	}
	fields := strings.Fields(string(out))
	size, err := strconv.ParseUint(fields[len(fields)-1], 10, 64)
	if err != nil {
		t.Fatalf("df output %q: %v", out, err)
	}
	if size != d.Size {
		t.Errorf("Size = %d, df says %d", d.Size, size)
	}
}

func TestDiskMissingPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such")
	_, err := Disk(missing)
	if err == nil {
		t.Fatal("no error for a missing path")
	}
	if !strings.Contains(err.Error(), missing) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v; want it to name %s and be fs.ErrNotExist", err, missing)
	}
}
