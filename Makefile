# knib Makefile: `make demo` and `make test` are the two commands.
.PHONY: setup guest build demo test test-unit tidy-check bench fuzz

GO ?= go

# Install packages, start virtlogd/libvirtd, build the test guest (root).
setup:
	bash scripts/setup.sh

# Build (or confirm cached) the test guest kernel + initramfs.
guest:
	bash scripts/build-guest.sh

build:
	$(GO) build -o bin/knib ./cmd/knib

# The main job on embedded defaults: all-in-one server, demo VM, offering,
# a full and an incremental backup.
demo: setup build
	bash scripts/demo.sh

# Every test: the unit tests, then the integration tests that boot real
# guests (two processes at once: scripts/integration.sh), then the fuzzers.
test: setup tidy-check
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m $$($(GO) list ./... | grep -v /test/integration$$)
	GO=$(GO) bash scripts/integration.sh
	bash scripts/fuzz.sh 5000x

# Every fuzz target for longer (FUZZTIME each, default 5m).
FUZZTIME ?= 5m
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

# go.mod and go.sum are tidy: fails (and prints the diff) when `go mod tidy`
# would change them.
tidy-check:
	$(GO) mod tidy -diff

# Unit tests only (no libvirt needed).
test-unit:
	$(GO) test -count=1 -short ./...
