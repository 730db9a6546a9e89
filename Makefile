# slurm-dmtcp: make builds into build/; make test runs unit then integration tests.
PREFIX      ?= /usr/local
DESTDIR     ?=
LIBEXECDIR  ?= $(PREFIX)/libexec/slurm-dmtcp
PLUGINDIR   ?= $(PREFIX)/lib/slurm-dmtcp
BINDIR      ?= $(PREFIX)/bin
DOCDIR      ?= $(PREFIX)/share/doc/slurm-dmtcp
SHAREDIR    ?= $(PREFIX)/share/slurm-dmtcp
UNITDIR     ?= $(PREFIX)/lib/systemd/system
PYTHONDIR   ?= $(SHAREDIR)/python
PYTHON      ?= python3

GO          ?= go
CC          ?= gcc
CFLAGS      ?= -O2 -g
# The release, defined once in proto/version.go.
VERSION     := $(shell sed -n 's/^const Version = "\(.*\)"$$/\1/p' proto/version.go)
SPANK_CFLAGS = -DSDMTCP_VERSION='"$(VERSION)"' -std=gnu11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
               -DSDMTCP_LIBEXECDIR='"$(LIBEXECDIR)"'
BUILD       := build
SPANK_SRC   := spank/spank_dmtcp.c spank/config.c spank/options.c spank/local.c spank/stepd.c \
               spank/slurmpath.c
SPANK_HDR   := $(wildcard spank/*.h)
GO_SRC      := $(shell find . -name '*.go' -not -path './build/*') go.mod go.sum
GO_CMDS     := slurm-dmtcp-agent slurm-dmtcp-exec dmtcpctl
GO_BINS     := $(addprefix $(BUILD)/,$(GO_CMDS))
ifneq ($(wildcard nodeprobe/cmd/slurm-dmtcp-nodeprobe/main.go),)
GO_BINS     += $(BUILD)/slurm-dmtcp-nodeprobe
endif

export CLUSTER_DIR ?= /var/tmp/slurm-dmtcp-cluster
# Where DMTCP is for the tests that need it: the conventional prefix when nothing else is
# configured (PATH is searched too).
export DMTCP_PREFIX ?= $(if $(wildcard /opt/dmtcp/bin/dmtcp_launch),/opt/dmtcp,)
NODES       ?= 1
# The DMTCP plugin of the tasks needs DMTCP's header; without it that one library is skipped.
DMTCP_H     := $(if $(DMTCP_PREFIX),$(wildcard $(DMTCP_PREFIX)/include/dmtcp.h))

.PHONY: all deps dmtcp-plugin install deb rpm check-version test test-slurm unit-test c-test python-test integration-test security faults apps lint demo cluster-up cluster-down bench clean
all: $(BUILD)/spank_dmtcp.so $(BUILD)/slurm-dmtcp-coordguard.so $(GO_BINS) dmtcp-plugin

$(BUILD):
	mkdir -p $@

# The plugin is plain C: slurmd, slurmstepd, srun and sbatch never load a Go runtime.
# Slurm's symbols (spank_*, slurm_error) resolve at load time inside the Slurm process.
$(BUILD)/spank_dmtcp.so: $(SPANK_SRC) $(SPANK_HDR) | $(BUILD)
	$(CC) $(CFLAGS) $(SPANK_CFLAGS) -shared -o $@ $(SPANK_SRC)

$(BUILD)/slurm-dmtcp-agent: $(GO_SRC) | $(BUILD)
	$(GO) build -trimpath -o $@ ./agent/cmd/$(notdir $@)

# The task launcher starts in front of every task of a --dmtcp step: static (no cgo, no
# dynamic loader), it starts in about 2.6 ms instead of 3.7.
$(BUILD)/slurm-dmtcp-exec: $(GO_SRC) | $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./agent/cmd/$(notdir $@)

# dmtcpctl is static (no cgo): run from a --dmtcp job, DMTCP's LD_PRELOAD does not load into it.
$(BUILD)/dmtcpctl: $(GO_SRC) | $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./agent/cmd/dmtcpctl

$(BUILD)/slurm-dmtcp-nodeprobe: $(GO_SRC) | $(BUILD)
	$(GO) build -trimpath -o $@ ./nodeprobe/cmd/slurm-dmtcp-nodeprobe

# Preloaded into the job's dmtcp_coordinator (as the user): refuses other local users.
$(BUILD)/slurm-dmtcp-coordguard.so: spank/coordguard.c spank/coordguard.h | $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared -o $@ spank/coordguard.c -ldl

# Loaded by DMTCP into every process of a --dmtcp task (see dmtcpplugin/README.md).
ifeq ($(DMTCP_H),)
dmtcp-plugin:
	@echo "SKIP slurm-dmtcp-sigterm.so: no include/dmtcp.h in DMTCP_PREFIX='$(DMTCP_PREFIX)' (make DMTCP_PREFIX=<DMTCP's install prefix>)"
else
dmtcp-plugin: $(BUILD)/slurm-dmtcp-sigterm.so
endif

$(BUILD)/slurm-dmtcp-sigterm.so: dmtcpplugin/sigterm.c dmtcpplugin/opath.c dmtcpplugin/forklock.c dmtcpplugin/brk.c $(DMTCP_H) | $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -I$(DMTCP_PREFIX)/include \
		-shared -o $@ dmtcpplugin/sigterm.c dmtcpplugin/opath.c dmtcpplugin/forklock.c dmtcpplugin/brk.c

$(BUILD)/opath-test: dmtcpplugin/test_opath.c dmtcpplugin/check.h dmtcpplugin/opath.c $(DMTCP_H) | $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -I$(DMTCP_PREFIX)/include -o $@ dmtcpplugin/test_opath.c

$(BUILD)/forklock-test: dmtcpplugin/test_forklock.c dmtcpplugin/check.h dmtcpplugin/forklock.c $(DMTCP_H) | $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -I$(DMTCP_PREFIX)/include -o $@ dmtcpplugin/test_forklock.c -lpthread

$(BUILD)/brk-test: dmtcpplugin/test_brk.c dmtcpplugin/check.h dmtcpplugin/brk.c | $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -o $@ dmtcpplugin/test_brk.c

$(BUILD)/sigterm-test: dmtcpplugin/test_sigterm.c dmtcpplugin/check.h dmtcpplugin/sigterm.c dmtcpplugin/brk.c $(DMTCP_H) | $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -I$(DMTCP_PREFIX)/include -o $@ dmtcpplugin/test_sigterm.c -ldl

$(BUILD)/spank-test: spank/test_spank.c $(SPANK_SRC) $(SPANK_HDR) spank/coordguard.c | $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -o $@ spank/test_spank.c \
		spank/config.c spank/options.c spank/stepd.c spank/local.c spank/slurmpath.c spank/coordguard.c -ldl

# The documentation keeps the checkout's layout under DOCDIR, so that its relative links
# work there too (processes.md, nodeprobe.md, ... of earlier releases are now
# spank/README.md, nodeprobe/README.md, ...).
DOC_FILES := README.md LICENSE $(wildcard docs/*.md) spank/README.md nodeprobe/README.md \
             dmtcpplugin/README.md contrib/dmtcp/README.md proto/control/PROTOCOL.md \
             proto/manifest/FORMAT.md proto/doc.go plugstack.conf.example

install: all
	install -d $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SHAREDIR)
	install -m 0755 $(BUILD)/spank_dmtcp.so $(DESTDIR)$(PLUGINDIR)/spank_dmtcp.so
	install -m 0755 $(BUILD)/slurm-dmtcp-agent $(BUILD)/slurm-dmtcp-exec $(BUILD)/slurm-dmtcp-coordguard.so $(DESTDIR)$(LIBEXECDIR)/
	if [ -f $(BUILD)/slurm-dmtcp-sigterm.so ]; then \
		install -m 0755 $(BUILD)/slurm-dmtcp-sigterm.so $(DESTDIR)$(LIBEXECDIR)/; fi
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PYTHONDIR)
	install -m 0755 $(BUILD)/dmtcpctl $(DESTDIR)$(BINDIR)/dmtcpctl
	install -d $(DESTDIR)$(PYTHONDIR)/slurm_dmtcp
	install -m 0644 contrib/python/slurm_dmtcp/__init__.py contrib/python/slurm_dmtcp/py.typed $(DESTDIR)$(PYTHONDIR)/slurm_dmtcp/
	install -d $(DESTDIR)$(SHAREDIR)/examples
	install -m 0644 contrib/examples/*.sh contrib/examples/*.py $(DESTDIR)$(SHAREDIR)/examples/
	if [ -f $(BUILD)/slurm-dmtcp-nodeprobe ]; then install -d $(DESTDIR)$(BINDIR) && \
		install -m 0755 $(BUILD)/slurm-dmtcp-nodeprobe $(DESTDIR)$(BINDIR)/; fi
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SHAREDIR)/systemd
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
		contrib/systemd/slurm-dmtcp-nodeprobe.service.in >$(DESTDIR)$(UNITDIR)/slurm-dmtcp-nodeprobe.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/slurm-dmtcp-nodeprobe.service
	install -m 0644 contrib/systemd/publish.conf $(DESTDIR)$(SHAREDIR)/systemd/publish.conf
	install -m 0644 plugstack.conf.example $(DESTDIR)$(SHAREDIR)/plugstack.conf.example
	for f in $(DOC_FILES); do install -D -m 0644 $$f $(DESTDIR)$(DOCDIR)/$$f || exit 1; done
	@echo "installed; add to plugstack.conf: required $(PLUGINDIR)/spank_dmtcp.so"

# Packages. The release is the one of proto/version.go; debian/changelog and the RPM spec
# repeat it and must agree (check-version says which file to change).
check-version:
	@cl=$$(dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null || sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog); \
	if [ "$${cl%%-*}" != "$(VERSION)" ]; then \
		echo "error: debian/changelog is at version $$cl but proto/version.go has $(VERSION): add a changelog entry for $(VERSION) (dch -v $(VERSION))" >&2; exit 1; fi; \
	sv=$$(sed -n 's/^Version:[[:space:]]*//p' contrib/rpm/slurm-dmtcp.spec); \
	if [ "$$sv" != "$(VERSION)" ]; then \
		echo "error: contrib/rpm/slurm-dmtcp.spec has Version: $$sv but proto/version.go has $(VERSION): change its Version: line (and add a %changelog entry)" >&2; exit 1; fi

# make deb: the .deb in build/deb/, built by dpkg-buildpackage from a copy of the source in
# build/deb/slurm-dmtcp-VERSION (the checkout stays clean, and nothing is written beside it).
# A Go toolchain that is not Debian's (e.g. GO=/usr/local/go/bin/go) drops golang-go from
# the build dependencies (build profile pkg.slurm-dmtcp.localgo). Go modules come from the
# module cache only (GOPROXY=off); Go's build cache is build/pkg-gocache.
DEB_DIR := $(BUILD)/deb
deb: check-version
	@command -v dpkg-buildpackage >/dev/null || { echo "error: make deb needs dpkg-buildpackage and dh (apt-get install dpkg-dev debhelper)" >&2; exit 1; }
	rm -rf $(DEB_DIR)/slurm-dmtcp-$(VERSION) $(DEB_DIR)/*.deb $(DEB_DIR)/*.buildinfo $(DEB_DIR)/*.changes
	mkdir -p $(DEB_DIR)/slurm-dmtcp-$(VERSION)
	tar --exclude=./$(BUILD) --exclude=./.git -cf - . | tar -xf - -C $(DEB_DIR)/slurm-dmtcp-$(VERSION)
	gobin=$$(command -v $(GO)) || { echo "error: no Go toolchain '$(GO)' (make deb GO=/path/to/go)" >&2; exit 1; }; \
	profile=; if ! dpkg -S "$$(readlink -f "$$gobin")" >/dev/null 2>&1; then \
		profile=-Ppkg.slurm-dmtcp.localgo; echo "deb: Go from $$gobin (not a Debian package): build profile pkg.slurm-dmtcp.localgo"; fi; \
	cd $(DEB_DIR)/slurm-dmtcp-$(VERSION) && GO="$$gobin" GOCACHE=$(abspath $(BUILD))/pkg-gocache \
		DMTCP_PREFIX="$(DMTCP_PREFIX)" dpkg-buildpackage -us -uc -b $$profile
	@ls $(DEB_DIR)/*.deb

# make rpm: the RPM of contrib/rpm/slurm-dmtcp.spec, built with rpmbuild (on EL, or on
# Debian with apt-get install rpm) from a tarball of the checkout, in build/rpm/.
# RPM_FLAGS=--nodeps where Slurm and Go are not RPM packages (e.g. on Debian).
RPM_DIR   := $(BUILD)/rpm
RPM_FLAGS ?= $(if $(wildcard /etc/debian_version),--nodeps)
rpm: check-version
	@command -v rpmbuild >/dev/null || { echo "error: make rpm needs rpmbuild (dnf install rpm-build; on Debian apt-get install rpm)" >&2; exit 1; }
	rm -rf $(RPM_DIR) && mkdir -p $(RPM_DIR)/SOURCES
	tar --exclude=./$(BUILD) --exclude=./.git --transform 's|^\./|slurm-dmtcp-$(VERSION)/|' \
		-czf $(RPM_DIR)/SOURCES/slurm-dmtcp-$(VERSION).tar.gz .
	GOCACHE=$(abspath $(BUILD))/pkg-gocache rpmbuild -bb $(RPM_FLAGS) --define '_topdir $(abspath $(RPM_DIR))' \
		--define 'go $(shell command -v $(GO))' --define 'dmtcp_prefix $(or $(DMTCP_PREFIX),/opt/dmtcp)' \
		contrib/rpm/slurm-dmtcp.spec
	@ls $(RPM_DIR)/RPMS/*/*.rpm

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './build/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit-test: lint
	$(GO) test -count=1 ./...

C_TESTS     := $(BUILD)/spank-test $(BUILD)/brk-test $(if $(DMTCP_H),$(BUILD)/sigterm-test $(BUILD)/opath-test $(BUILD)/forklock-test)
c-test: $(C_TESTS)
	@$(if $(DMTCP_H),,echo "SKIP sigterm-test, opath-test, forklock-test: no include/dmtcp.h in DMTCP_PREFIX='$(DMTCP_PREFIX)'";) \
	for t in $(C_TESTS); do \
		if command -v valgrind >/dev/null; then \
			valgrind -q --error-exitcode=9 --leak-check=full $$t || exit 1; \
		else echo "SKIP valgrind: not installed; running $$t without it"; $$t || exit 1; fi; \
	done

python-test:
	@if command -v $(PYTHON) >/dev/null; then cd contrib/python && $(PYTHON) -m unittest -v test_slurm_dmtcp 2>&1; \
	else echo "SKIP python-test: $(PYTHON) not found"; fi
	contrib/tests/python-package.sh

integration-test: all
	contrib/tests/integration.sh

# The security tests alone, on the one-node and the 3-node cluster, with one tally line
# (make test runs them too, among the integration tests, and prints the same line).
security: deps
	$(MAKE) all
	SDMTCP_SUITE=security contrib/tests/integration.sh

# The fault campaign: TRIALS real jobs, each hit at a random moment by one fault, one tally
# line at the end (SEED=N replays a run; make test runs 10 trials of it).
# REQUEUES=N: the requeue storm after it, one Python driver requeued N times (default 10).
TRIALS   ?= 10
SEED     ?=
REQUEUES ?= 10
faults: deps
	$(MAKE) all
	SDMTCP_SUITE=faults SDMTCP_FAULT_TRIALS=$(TRIALS) SDMTCP_FAULT_SEED=$(SEED) \
		SDMTCP_STORM_REQUEUES=$(REQUEUES) contrib/tests/integration.sh

# The compatibility suite: real programs from Debian (contrib/deps.sh --apps installs them),
# each an sbatch --dmtcp job requeued at a random moment and compared with an uninterrupted
# run; one line per program and one tally line. APPS=lammps,java runs some; SEED=N replays.
APPS ?= all
apps:
	contrib/deps.sh --apps
	$(MAKE) all
	SDMTCP_SUITE=apps SDMTCP_APPS=$(APPS) SDMTCP_APPS_SEED=$(SEED) contrib/tests/integration.sh

# The Debian packages the build and the tests need are installed first (as root; DMTCP is
# built by hand, see README); then everything is built and run.
deps:
	contrib/deps.sh

# make test SLURM=24.11: the same suite against another Slurm release, inside a Debian root
# of its own that carries that release (contrib/tests/slurm-release.sh).
SLURM ?=
ifeq ($(SLURM),)
test: deps
	$(MAKE) all unit-test c-test python-test integration-test
else
test: test-slurm
endif

test-slurm:
	@[ -n "$(SLURM)" ] || { echo "make test-slurm SLURM=24.11 (the Slurm release to test against)" >&2; exit 2; }
	contrib/tests/slurm-release.sh $(SLURM)

# make cluster-up NODES=3: nodes n1..n3 in network namespaces (see contrib/cluster/cluster-up.sh).
cluster-up: all
	NODES=$(NODES) contrib/cluster/cluster-up.sh

cluster-down:
	contrib/cluster/cluster-down.sh

demo: deps
	$(MAKE) all
	contrib/demo.sh

bench: all
	contrib/bench/bench.sh

clean:
	rm -rf $(BUILD)
