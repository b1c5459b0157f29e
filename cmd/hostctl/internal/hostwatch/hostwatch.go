// Package hostwatch reads the host figures the alerting daemon watches:
// the machine's total and available memory (from /proc/meminfo) and the
// size and free space of a filesystem (statfs). It only measures; the
// daemon compares the figures with thresholds such as
// logfile.ParseKeepFree(...).Threshold(size) and decides what to tell.
package hostwatch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MemoryInfo is the machine's memory, in bytes.
type MemoryInfo struct {
	// Total is MemTotal: the RAM the kernel manages.
	Total uint64
	// Available is MemAvailable: the kernel's estimate of how much memory
	// can be given to new work without swapping (free memory plus page
	// cache and reclaimable slab that can be dropped).
	Available uint64
}

// meminfoPath is read by Memory.
const meminfoPath = "/proc/meminfo"

// Memory returns MemTotal and MemAvailable from /proc/meminfo. It fails
// on a kernel older than 3.14, which has no MemAvailable.
func Memory() (MemoryInfo, error) {
	f, err := os.Open(meminfoPath)
	if err != nil {
		return MemoryInfo{}, err
	}
	defer f.Close()
	mi, err := parseMeminfo(f)
	if err != nil {
		return MemoryInfo{}, fmt.Errorf("%s: %w", meminfoPath, err)
	}
	return mi, nil
}

// parseMeminfo reads the MemTotal and MemAvailable lines of a
// /proc/meminfo ("MemTotal:       24683656 kB"); both are required.
func parseMeminfo(r io.Reader) (MemoryInfo, error) {
	var mi MemoryInfo
	var haveTotal, haveAvail bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch name {
		case "MemTotal":
			dst, haveTotal = &mi.Total, true
		case "MemAvailable":
			dst, haveAvail = &mi.Available, true
		default:
			continue
		}
		n, err := parseKB(rest)
		if err != nil {
			return MemoryInfo{}, fmt.Errorf("%s: %w", name, err)
		}
		*dst = n
	}
	if err := sc.Err(); err != nil {
		return MemoryInfo{}, err
	}
	switch {
	case !haveTotal:
		return MemoryInfo{}, errors.New("no MemTotal line")
	case !haveAvail:
		return MemoryInfo{}, errors.New("no MemAvailable line (Linux 3.14 or later has it)")
	}
	return mi, nil
}

// parseKB parses the value of a meminfo line, "  24683656 kB", to bytes.
func parseKB(s string) (uint64, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
		return 0, fmt.Errorf("%q is not a number of kB", strings.TrimSpace(s))
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of kB", strings.TrimSpace(s))
	}
	if len(f) == 1 {
		return n, nil // a count, not a size (not the case for the two lines read)
	}
	if n > (1<<64-1)/1024 {
		return 0, fmt.Errorf("%s kB is out of range", f[0])
	}
	return n * 1024, nil
}

// DiskInfo is the filesystem holding Path, in bytes.
type DiskInfo struct {
	// Path is the path asked about.
	Path string
	// Size is the filesystem's size (blocks times fragment size, as df
	// shows it).
	Size uint64
	// Free is what unprivileged users may still write (statfs f_bavail,
	// df's "Avail"): it leaves out the blocks reserved for root.
	Free uint64
	// Device is the device number of the filesystem (stat st_dev): two
	// paths with the same Device are on the same filesystem, so the daemon
	// can check and alert once for both.
	Device uint64
}

// Disk returns the size and free space of the filesystem holding path,
// which must exist. An error names the path.
func Disk(path string) (DiskInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return DiskInfo{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return DiskInfo{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	unit := uint64(fs.Frsize)
	if unit == 0 {
		unit = uint64(fs.Bsize)
	}
	return DiskInfo{
		Path:   path,
		Size:   fs.Blocks * unit,
		Free:   fs.Bavail * unit,
		Device: uint64(st.Dev),
	}, nil
}
