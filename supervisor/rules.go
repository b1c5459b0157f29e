package supervisor

// The rules that decide what a program's Status means, once, for every
// reader: the daemon's READY=1 and proxy start, health_path, the alerts
// and the admin API's waits ask these instead of switching on State
// themselves.
//
// Two other checks look like "is the app up" and are other questions,
// so they stay where they are: Caddy's active and passive health checks
// (proxy) ask whether an upstream address answers HTTP, for upstreams on
// other machines too, to pick where a request goes; the upstreams_down
// alert (cmd/hostctl/internal/watch) asks whether any upstream of a site
// accepts a connection, which is what visitors see, whoever runs it.

// Up reports whether the program serves: RUNNING (past start_secs and
// its ready probe) and, with a health check, passing it. health_path
// answers 200 for a site while a program that serves it is Up.
func (s Status) Up() bool {
	return s.State == Running && (s.Health == nil || s.Health.Healthy)
}

// Settled reports whether the program got where it was going: RUNNING, or
// staying down until someone asks (StaysDown: FATAL, EXITED, STOPPED).
// Waiting longer for it would wait for nothing: READY=1 is sent, and the
// proxy starts, once the programs they wait for have settled; a start or
// restart is over when the program has settled (RUNNING, or it failed).
func (s Status) Settled() bool {
	return s.State == Running || s.StaysDown()
}

// AwaitsAutostart reports whether the program is an autostart program
// that is still STOPPED. Before StartAutostart has sent it its start that
// is its state, and it has not settled; whoever asks Settled that early
// (the proxy's first start is set up before the autostart programs are
// started) asks this too.
func (s Status) AwaitsAutostart() bool {
	return s.Autostart && s.State == Stopped
}
