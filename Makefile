# Sigillo — `make run` serves on https://127.0.0.1:8443 (and CRL, OCSP, TSA on http://127.0.0.1:8080), `make test` runs every test.
# Both install what is missing (Debian packages, a Python venv) first; CI runs `make test` as root.

SWIFT ?= swift
APT_PACKAGES = softhsm2 opensc libp11-kit-dev libssl-dev libargon2-dev libsqlite3-dev libqrencode-dev oathtool \
               openssl sqlite3 curl python3 python3-venv ca-certificates \
               chromium zbar-tools \
               postgresql p11-kit p11-kit-modules haproxy
PY_PACKAGES = pyotp cryptography "pyhanko[async-http,etsi]" pyhanko-cli aiosmtpd playwright openapi-spec-validator authlib requests
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV = .venv
RELEASE_BIN = .build/release/sigillo
RELEASE_BENCH = .build/release/sigillo-bench
DEBUG_BIN = .build/debug/sigillo
export SOFTHSM2_CONF = $(CURDIR)/hsm-config/softhsm2.conf

# The libFuzzer targets (README "Fuzzing"): `sigillo-fuzz` built with libFuzzer and AddressSanitizer into its own
# scratch path, so the sanitizer build never invalidates the main one.
FUZZ_TARGETS ?= csc-request base64 pss-params ocsp-request timestamp-query token-csv server-config oauth-request
FUZZ_SECONDS ?= 60
FUZZ_TEST_RUNS ?= 3000
FUZZ_SCRATCH = .build/fuzz
FUZZ_BUILD_FLAGS = --scratch-path $(FUZZ_SCRATCH) --product sigillo-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DSIGILLO_FUZZING

.PHONY: run test deps deps-lock-check venv build build-bench build-debug token certs ca bench bench-hsm bench-cluster clean-dev fuzz fuzz-build

run: deps build token certs ca
	@mkdir -p var
	$(RELEASE_BIN) serve

# CI shows only a part of what it prints, so `make test` prints little: one line per step, and on failure
# the failing tests and the end of the log. The whole logs are in .build/{build,test}.log.
test: deps venv
	@mkdir -p .build; echo "building (log: .build/build.log)"; \
	if ! $(SWIFT) build --build-tests > .build/build.log 2>&1; then \
		grep -E "error:" .build/build.log | head -40; tail -20 .build/build.log; exit 1; fi
	@echo "testing (log: .build/test.log)"; $(SWIFT) test > .build/test.log 2>&1; status=$$?; \
	grep -E "Test run with" .build/test.log | tail -2; \
	if [ "$$status" != 0 ]; then \
		echo "---- swift test exited with $$status; failures (whole log: .build/test.log) ----"; \
		grep -E "✘|recorded an issue|Expectation failed|error:|Fatal error|Crash|signal code|FAILED" .build/test.log \
			| grep -v -E "HummingbirdCore|\] mail|test-server:" | cut -c1-400 | head -40; \
		echo "---- end of the log ----"; tail -15 .build/test.log | cut -c1-400; \
	fi; exit $$status
	@$(MAKE) --no-print-directory fuzz-build
	@echo "fuzzing each target for $(FUZZ_TEST_RUNS) inputs (logs: $(FUZZ_SCRATCH)/logs)"; sh Tests/Fuzz/fuzz.sh runs $(FUZZ_TEST_RUNS) $(FUZZ_TARGETS)
	@$(MAKE) --no-print-directory deps-lock-check

# Each fuzz target for FUZZ_SECONDS (default 60); new inputs are kept in .build/fuzz/corpus, crashes in
# .build/fuzz/artifacts. `make fuzz FUZZ_TARGETS=ocsp-request FUZZ_SECONDS=600` fuzzes one target longer.
fuzz: deps fuzz-build
	@sh Tests/Fuzz/fuzz.sh seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Only the fuzz product, debug, with the sanitizers (the first build takes minutes: every module again).
fuzz-build:
	@mkdir -p $(FUZZ_SCRATCH); echo "building the fuzz targets with libFuzzer and AddressSanitizer (log: $(FUZZ_SCRATCH)/build.log)"; \
	if ! $(SWIFT) build $(FUZZ_BUILD_FLAGS) > $(FUZZ_SCRATCH)/build.log 2>&1; then \
		grep -E "error:" $(FUZZ_SCRATCH)/build.log | head -40; tail -5 $(FUZZ_SCRATCH)/build.log | cut -c1-400; exit 1; fi

# Installs the Debian packages that are missing (apt-get update first, no questions asked). Two makes at once (`make
# run` and `make test`, or two checkouts) take turns: each holds APT_LOCK (flock) while it updates and installs, and
# looks again for what is missing once it has it. apt-get itself waits up to 10 minutes for the dpkg lock another apt
# holds (unattended-upgrades); `apt-get update` cannot wait for the lists lock, so it is tried up to 5 times.
# `make deps-lock-check` shows the turn-taking with stand-ins for dpkg and apt-get (installs nothing, needs no root).
APT_LOCK ?= /tmp/sigillo-apt.lock
APT_GET = DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing (log: .build/apt.log; waits for another apt-get)"; mkdir -p .build; \
		$(SUDO) flock -w 1800 $(APT_LOCK) sh -c ' \
			missing=""; for p in "$$@"; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
			[ -z "$$missing" ] && { echo "installed meanwhile:$$*"; exit 0; }; \
			for try in 1 2 3 4 5; do $(APT_GET) update -qq && break; [ $$try = 5 ] && exit 1; sleep 10; done; \
			$(APT_GET) install -y -qq --no-install-recommends $$missing' apt $$missing >> .build/apt.log 2>&1 \
		|| { tail -30 .build/apt.log; exit 1; }; \
	fi

deps-lock-check:
	@sh Tests/Make/deps-lock-check.sh

venv: $(VENV)/.installed
# Re-run when the Makefile (the package list) changes: pip skips what is already installed.
$(VENV)/.installed: Makefile
	@echo "python venv (log: .build/venv.log)"; mkdir -p .build; \
	{ python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade pip && $(VENV)/bin/pip install -q $(PY_PACKAGES); } \
		> .build/venv.log 2>&1 || { tail -30 .build/venv.log; exit 1; }
	@touch $@

build:
	$(SWIFT) build -c release --product sigillo

# The benchmark is its own executable; it starts the `sigillo` built beside it.
build-bench: build
	$(SWIFT) build -c release --product sigillo-bench

build-debug:
	$(SWIFT) build --product sigillo

token: build
	SIGILLO=$(RELEASE_BIN) hsm-config/create-token.sh

certs:
	certs/dev-certs.sh

# The signing CA: key pair generated in the token, self-signed certificate in certs/ca.pem; then the time-stamping
# authority: its key in the token, its certificate (issued by the CA) in certs/tsa.pem (idempotent).
ca: build token
	$(RELEASE_BIN) ca init

# The token micro-benchmark (raw C_Sign loop vs the Signer), on a fresh temporary SoftHSM token.
bench-hsm: deps build-bench
	$(RELEASE_BENCH) hsm --seconds 5 --rounds 3

# The whole benchmark (issue 6): raw C_Sign baseline, 64 clients over TLS against a child `sigillo serve`,
# authorize alone, client hashing, token scaling. Prints the tables and writes them to var/bench.md (JSON: var/bench.json).
bench: deps build-bench
	@mkdir -p var
	$(RELEASE_BENCH) --json --output var/bench.md > var/bench.json
	@cat var/bench.md

# Issue 12's comparison, one after the other on this machine: the end-to-end bench on SQLite, on PostgreSQL (a
# throw-away server, Benchmarks/postgres.sh), and on two nodes sharing that database; tables in var/bench-{sqlite,
# postgres,two-nodes}.md. BENCH_ARGS narrows it (default: ECDSA P-256, 1 and 64 hashes, 5 s phases).
BENCH_ARGS ?= --keys ecdsa-p256 --hashes 1,64 --seconds 5
BENCH_PG = /tmp/sigillo-bench-pg
BENCH_PG_PORT ?= 25432
bench-cluster: deps build-bench
	@mkdir -p var
	$(RELEASE_BENCH) e2e $(BENCH_ARGS) --output var/bench-sqlite.md > /dev/null
	@url=$$(sh Benchmarks/postgres.sh start $(BENCH_PG) $(BENCH_PG_PORT)); trap 'sh Benchmarks/postgres.sh stop $(BENCH_PG)' EXIT; \
	SIGILLO_BENCH_PGPASSWORD=bench $(RELEASE_BENCH) e2e $(BENCH_ARGS) --database $$url --database-password-env SIGILLO_BENCH_PGPASSWORD --output var/bench-postgres.md > /dev/null && \
	sh Benchmarks/postgres.sh reset $(BENCH_PG) $(BENCH_PG_PORT) && \
	SIGILLO_BENCH_PGPASSWORD=bench $(RELEASE_BENCH) e2e $(BENCH_ARGS) --database $$url --database-password-env SIGILLO_BENCH_PGPASSWORD --nodes 2 --output var/bench-two-nodes.md > /dev/null
	@for f in sqlite postgres two-nodes; do echo "## $$f"; cat var/bench-$$f.md; done

# Removes the development token, certificates and database (not the build).
clean-dev:
	rm -rf hsm-config/tokens hsm-config/softhsm2.conf hsm-config/*.pin var
	find certs -type f ! -name README.md ! -name dev-certs.sh -delete
