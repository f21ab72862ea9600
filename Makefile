# The README's two commands: `make demo` and `make test`.
GO ?= go

.PHONY: test demo build vet bench bench-go fuzz release

test: vet
	$(GO) test -race -count=1 -timeout 40m ./...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# The version stamped into binaries (`rowhook version`, rowhook_build_info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS = -s -w -X main.version=$(VERSION)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/rowhook ./cmd/rowhook

# Static binaries for Linux amd64 and arm64 in dist/, with SHA256SUMS.
# deploy/release_test.go builds with these flags and checks the stamp.
RELEASE_ARCHS ?= amd64 arm64
DIST ?= dist
release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	for arch in $(RELEASE_ARCHS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o $(DIST)/rowhook-$(VERSION)-linux-$$arch ./cmd/rowhook || exit 1; \
	done
	cd $(DIST) && sha256sum rowhook-* > SHA256SUMS

demo:
	$(GO) run ./cmd/rowhook demo

# rowhook bench: private MariaDB, local receivers, figures against the goals.
bench:
	$(GO) run ./cmd/rowhook bench

# The packages' Go benchmarks.
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...

# Each fuzzer for FUZZTIME (the committed corpora also run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/yamlconf
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) ./cmd/rowhook
	$(GO) test -run '^$$' -fuzz '^FuzzRuleCompile$$' -fuzztime $(FUZZTIME) ./rules
	$(GO) test -run '^$$' -fuzz '^FuzzResponseMapping$$' -fuzztime $(FUZZTIME) ./writeback
	$(GO) test -run '^$$' -fuzz '^FuzzParseWSDL$$' -fuzztime $(FUZZTIME) ./dispatch/soap
	$(GO) test -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(FUZZTIME) ./dispatch/soap
	$(GO) test -run '^$$' -fuzz '^FuzzRowImage$$' -fuzztime $(FUZZTIME) ./cdc
	$(GO) test -run '^$$' -fuzz '^FuzzAppendHeaders$$' -fuzztime $(FUZZTIME) ./internal/jsonx
