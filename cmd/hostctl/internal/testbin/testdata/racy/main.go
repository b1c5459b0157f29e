// Command racy is a deliberately racy program for testbin's own test: with
// "race" as its argument, two goroutines write one variable without
// synchronization; without, they take turns. It is built only by that
// test (testdata is not part of ./...).
package main

import (
	"fmt"
	"os"
)

func main() {
	n := 0
	done := make(chan struct{})
	go func() {
		n++
		close(done)
	}()
	if len(os.Args) > 1 && os.Args[1] == "race" {
		n++ // concurrent with the goroutine's write: a data race
		<-done
	} else {
		<-done
		n++ // after the goroutine's write (the channel orders them)
	}
	fmt.Println("survived, n =", n)
}
