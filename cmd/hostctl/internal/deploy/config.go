// Package deploy keeps an application's releases on disk for `hostctl
// deploy`: DIR/releases/<UTC time>-<short sha>/, a `current` symbolic link
// switched atomically, shared paths linked into each release, the build
// steps run in a new release as the app's user, pruning to [deploy] keep,
// and the state of every release recorded in hostctl's state dir.
//
// It knows nothing of the proxy or of how traffic moves to a release:
// the switch (issue 23 §2) calls Host.Activate once the new release's
// programs pass their gate.
package deploy

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hostctl/hostctl/supervisor"
)

// Config is the [deploy] section of hostctl.toml.
type Config struct {
	// Dir holds the releases: Dir/releases/<id>/, Dir/current (a symbolic
	// link to the live release) and Dir/shared/ (the shared paths). It
	// and the directories hostctl makes in it are owned by root and
	// writable by root only; each release dir belongs to the app's user.
	// Required; an absolute path ("/var/www/hello").
	Dir string `toml:"dir"`
	// Repo is where the code comes from: a git URL or a local path,
	// fetched by Debian's git (as root) into a bare mirror in the state
	// dir, so that a deploy fetches only new objects. Optional: without
	// it a deploy needs --from.
	Repo string `toml:"repo"`
	// Branch is the ref a deploy takes from Repo when --ref does not name
	// another. Default "main".
	Branch string `toml:"branch"`
	// Shared are paths relative to a release ("media/", ".env") that every
	// release shares: Dir/shared/PATH, linked into each new release at
	// PATH (what the code has there is replaced). A path that ends in "/"
	// is a directory, made (owned by the app's user) when missing; any
	// other must exist as Dir/shared/PATH.
	Shared []string `toml:"shared"`
	// Keep is how many releases stay on disk, the newest ones; the live
	// and previous releases always stay too. Default 5.
	Keep int `toml:"keep"`
	// Build are the steps that make a new release runnable ([[deploy.build]]),
	// run in order in the release dir as the app's user.
	Build []Step `toml:"build"`
	// BeforeSwitch are steps run once per deploy with the new code before
	// any traffic moves ([[deploy.before_switch]]: manage.py migrate). The
	// switch (issue 23 §2) runs them; for now they are only checked.
	BeforeSwitch []Step `toml:"before_switch"`
	// Program names the program whose user, group and environment the
	// steps take (the web program: "gunicorn"). Optional.
	Program string `toml:"program"`
	// User and Group run the steps (uid, gid and the user's
	// supplementary groups, as for a program); they override Program's.
	// One of User or Program (with a user) is required: the steps never
	// run as root by default.
	User  string `toml:"user"`
	Group string `toml:"group"`
	// Environment is added to the steps' environment (over Program's);
	// values expand ${VAR} from hostctl's environment. RELEASE (the id)
	// and RELEASE_DIR (its absolute path) are set on top.
	Environment map[string]string `toml:"environment"`

	// Check are the paths ("/", "/healthz") the gate requests from a new
	// release's blue_green instances before traffic moves to them:
	// through hostctl's own proxy, with the site's Host header, sent to
	// the new slot only. Each must answer CheckStatus (and contain
	// CheckBody) within DeployTimeout. Default none: the gate is the
	// programs' ready and health probes.
	Check []string `toml:"check"`
	// CheckStatus is the status every Check path must answer. Default 200.
	CheckStatus int `toml:"check_status"`
	// CheckBody, if set, must be in every Check path's answer body.
	CheckBody string `toml:"check_body"`
	// CheckHost is the Host header of the Check requests. Default: the
	// first host name of the site the blue_green program serves, else
	// "localhost".
	CheckHost string `toml:"check_host"`
	// DeployTimeout bounds the gate: from the start of the new slot's
	// instances until they are RUNNING, healthy and answer every Check
	// path. Past it the new slot is stopped and the deploy fails; nothing
	// live changed. Default 2m.
	DeployTimeout time.Duration `toml:"deploy_timeout"`

	// RunAs is who the steps run as, and with what environment: Program's
	// user, group and environment overridden by User, Group and
	// Environment. Set by Provision; not a TOML key.
	RunAs supervisor.ProgramConfig `toml:"-"`

	unknownProgram bool // Provision reported Program
}

// Step is one build or before_switch step.
type Step struct {
	// Command is run by /bin/sh -c. Required.
	Command string `toml:"command"`
	// Timeout bounds the step; past it its whole process group is killed
	// and the step fails. Default 10m.
	Timeout time.Duration `toml:"timeout"`
}

// Defaults of Config.
const (
	DefaultBranch        = "main"
	DefaultKeep          = 5
	DefaultStepTimeout   = 10 * time.Minute
	DefaultCheckStatus   = 200
	DefaultDeployTimeout = 2 * time.Minute
)

// DefaultConfig returns [deploy] with its defaults.
func DefaultConfig() Config {
	return Config{Branch: DefaultBranch, Keep: DefaultKeep, CheckStatus: DefaultCheckStatus, DeployTimeout: DefaultDeployTimeout}
}

// DefaultStep returns a step with its defaults (for the config decoder).
func DefaultStep() Step { return Step{Timeout: DefaultStepTimeout} }

// FieldError is one problem in [deploy], at a key path such as
// "deploy.build[1].timeout".
type FieldError struct {
	Key string
	Msg string
	// Machine: the problem is with this machine (an unknown user), not
	// with the file.
	Machine bool
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key path and the message apart, for the config
// reader to put the key's line in front.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }

// OnMachine reports whether the problem is with this machine.
func (e *FieldError) OnMachine() bool { return e.Machine }

// Provision sets RunAs from Program (one of programs) and User, Group
// and Environment. Problems are *FieldErrors whose keys start with
// prefix ("deploy").
func (c *Config) Provision(prefix string, programs map[string]*supervisor.ProgramConfig) []error {
	var errs []error
	c.RunAs = supervisor.ProgramConfig{Name: "deploy"}
	if c.Program != "" {
		p, ok := programs[c.Program]
		if !ok {
			c.unknownProgram = true
			errs = append(errs, &FieldError{Key: prefix + ".program", Msg: fmt.Sprintf("%q is not a program in this file (programs: %s)", c.Program, strings.Join(slices.Sorted(maps.Keys(programs)), ", "))})
		} else {
			c.RunAs.User, c.RunAs.Group = p.User, p.Group
			c.RunAs.InheritEnvironment = p.InheritEnvironment
			c.RunAs.Environment = maps.Clone(p.Environment)
		}
	}
	if c.User != "" {
		c.RunAs.User, c.RunAs.Group = c.User, ""
	}
	if c.Group != "" {
		c.RunAs.Group = c.Group
	}
	if len(c.Environment) > 0 && c.RunAs.Environment == nil {
		c.RunAs.Environment = map[string]string{}
	}
	maps.Copy(c.RunAs.Environment, c.Environment)
	return errs
}

// Validate returns every problem in c, each a *FieldError whose key
// starts with prefix ("deploy"). Call it after Provision.
func (c *Config) Validate(prefix string) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: prefix + key, Msg: fmt.Sprintf(format, a...)})
	}
	switch {
	case c.Dir == "":
		bad(".dir", "required: the directory that holds releases/ and current (for example \"/var/www/hello\")")
	case !filepath.IsAbs(c.Dir) || filepath.Clean(c.Dir) != c.Dir || c.Dir == "/":
		bad(".dir", "%q must be a clean absolute path other than / (for example \"/var/www/hello\")", c.Dir)
	}
	if strings.HasPrefix(c.Repo, "-") {
		bad(".repo", "%q must not start with '-' (git would read it as an option)", c.Repo)
	}
	if c.Branch == "" || strings.HasPrefix(c.Branch, "-") || strings.ContainsFunc(c.Branch, func(r rune) bool { return r <= ' ' }) {
		bad(".branch", "%q is not a branch name (for example \"main\")", c.Branch)
	}
	seen := map[string]int{}
	for i, s := range c.Shared {
		p := strings.TrimSuffix(s, "/")
		switch {
		case p == "" || filepath.IsAbs(p) || filepath.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
			bad(fmt.Sprintf(".shared[%d]", i), "%q must be a clean path inside a release (for example \"media/\" or \".env\")", s)
		default:
			if j, dup := seen[p]; dup {
				bad(fmt.Sprintf(".shared[%d]", i), "%q is also shared[%d]", s, j)
			}
			seen[p] = i
		}
	}
	if c.Keep < 1 {
		bad(".keep", "%d: must be at least 1 (how many releases stay on disk)", c.Keep)
	}
	for name, steps := range map[string][]Step{".build": c.Build, ".before_switch": c.BeforeSwitch} {
		for i, s := range steps {
			if strings.TrimSpace(s.Command) == "" {
				bad(fmt.Sprintf("%s[%d].command", name, i), "required: a shell command run in the release dir (for example \"python3 manage.py collectstatic --noinput\")")
			}
			if s.Timeout <= 0 {
				bad(fmt.Sprintf("%s[%d].timeout", name, i), "must be more than 0 (for example \"5m\")")
			}
		}
	}
	for i, p := range c.Check {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\r\n#") {
			bad(fmt.Sprintf(".check[%d]", i), "%q must be a path of the site starting with / (for example \"/healthz\")", p)
		}
	}
	if c.CheckStatus < 100 || c.CheckStatus > 599 {
		bad(".check_status", "%d is not an HTTP status (for example 200)", c.CheckStatus)
	}
	if strings.ContainsAny(c.CheckHost, " \t\r\n/") {
		bad(".check_host", "%q is not a host name", c.CheckHost)
	}
	if c.DeployTimeout <= 0 {
		bad(".deploy_timeout", "must be more than 0 (for example \"2m\")")
	}
	switch {
	case c.unknownProgram:
	case c.RunAs.User == "" && c.Group != "":
		bad(".group", "requires user (or program with a user): alone it would run the steps as root")
	case c.RunAs.User == "" && c.Program != "":
		bad(".program", "program %q has no user, and the build steps run as the app's user, never as root: set user here or in [program.%s]", c.Program, c.Program)
	case c.RunAs.User == "":
		bad(".user", "required (or program = a program with a user): the build steps run as the app's user, never as root")
	default:
		if _, err := supervisor.Credential(c.RunAs.User, c.RunAs.Group); err != nil {
			key := ".user"
			if c.User == "" {
				key = ".program"
			}
			errs = append(errs, &FieldError{Key: prefix + key, Msg: err.Error(), Machine: true})
		}
	}
	return errs
}
