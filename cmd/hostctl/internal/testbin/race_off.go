//go:build !race

package testbin

// Race is true when this test binary was built with -race.
const Race = false
