# hostctl: one binary that supervises a web app's programs and serves its site.
GO        ?= go
BIN       := bin/hostctl
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/hostctl/hostctl/cmd/hostctl/internal/cli.Version=$(VERSION)
# Test timeouts: the whole suite stays well under CI's budget.
TESTFLAGS ?= -race -count=1 -timeout 30m
# Under stress-ng every package takes about twice as long.
STRESS_TESTFLAGS ?= -race -count=1 -timeout 60m

.PHONY: help build deb run run-django test test-stress e2e e2e-fleet lint clean bench bench-footprint bench-logs bench-proxy bench-proxy-daemon bench-supervisor

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/hostctl
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/hostctl

# The package's binary is static (CGO_ENABLED=0, as Caddy's own package):
# it runs on any Debian or Ubuntu and in a bare chroot; users and groups
# come from /etc/passwd and /etc/group. scripts/deb is a module of its own
# (nfpm stays out of hostctl's dependencies).
DEB_DIR ?= bin
deb: ## build $(DEB_DIR)/hostctl_VERSION_amd64.deb (nfpm, scripts/deb): binary, unit, /etc/hostctl/hostctl.toml, completions
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DEB_DIR)/deb/hostctl ./cmd/hostctl
	cd scripts/deb && $(GO) run . -root $(CURDIR) -bin $(abspath $(DEB_DIR))/deb/hostctl -version '$(VERSION)' -out $(abspath $(DEB_DIR))

run: build ## run hostctl in the foreground on configs/demo.toml
	@scripts/run-demo.sh $(BIN)

# The fleet's load test (TestFleetFront: four hostctl and wrk, a few
# minutes) is its own step, e2e-fleet, which CI runs after test; the other
# fleet tests (shared certificates, status --fleet) run in both.
test: ## run every test (with -race) but the fleet's load test
	scripts/test-deps.sh
	$(GO) test $(TESTFLAGS) -skip '^TestFleetFront$$' ./...

# The same suite with both cores kept busy by stress-ng (scripts/with-stress.sh
# starts it and stops it by its PID): a test that passes only on a quiet
# machine fails here. CI runs it after test and e2e-fleet.
test-stress: ## make test beside stress-ng --cpu 2 (what CI runs last)
	scripts/test-deps.sh
	scripts/with-stress.sh $(MAKE) --no-print-directory test TESTFLAGS='$(STRESS_TESTFLAGS)'

e2e-fleet: ## three webservers and a front under load: balancing, draining, a webserver killed; shared certificates, status --fleet (CI runs it after test)
	scripts/test-deps.sh
	$(GO) test $(TESTFLAGS) -v -run '^TestFleet' ./cmd/hostctl/e2e/

e2e: ## the Django example end to end under the real hostctl (installs Debian packages as root)
	scripts/e2e-deps.sh
	$(GO) test $(TESTFLAGS) -v -run 'TestDjangoWebserver|TestDjangoRollingRestartUnderLoad|TestDeploySwitchDjango' ./cmd/hostctl/e2e/

run-django: build ## run the Django example (configs/webserver.toml) in the foreground
	. configs/django/env.sh && HELLO_STATIC_ROOT=$$WEBSERVER_DIR/static /usr/bin/python3 configs/django/manage.py collectstatic --noinput -v0 && exec $(BIN) run -c configs/webserver.toml

bench: ## nginx + supervisord vs hostctl on the Django example; ~13 min, not in CI
	scripts/bench/compare.sh

lint: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd scripts/deb && $(GO) vet ./...

bench-supervisor: ## supervisor benchmarks: respawn latency, 100 programs
	$(GO) test -run '^$$' -bench . -benchtime 20x ./supervisor/

bench-proxy: ## proxy req/s, p50/p99: hostctl vs nginx before a Go server and gunicorn/Django (installs nginx, gunicorn, python3-django, wrk as root)
	scripts/bench/proxy.sh

bench-footprint: build ## binary size, CLI start-up and status times, idle and loaded RSS of hostctl run with the proxy
	scripts/bench/footprint.sh $(BIN)

bench-proxy-daemon: ## the hostctl daemon vs nginx (access logs on) before gunicorn on a unix socket: req/s, p99, CPU/request, RSS
	scripts/bench/proxy_daemon.sh

bench-logs: ## log capture MB/s: /dev/null, cat, hostctl, supervisord (installs supervisor as root); hostctl with 0 and 5 log rules
	scripts/bench/logs.sh

clean: ## remove build outputs
	rm -rf bin
