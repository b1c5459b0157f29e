// Command hostctl runs a Python web application's server: it supervises its
// programs (gunicorn, celery, memcached, rabbitmq, ...) and serves the site
// through an embedded Caddy. The same binary is the daemon (`hostctl run`)
// and its CLI.
package main

import (
	"os"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:]))
}
