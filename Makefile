# The README's two commands: `make demo` and `make test`.
GO ?= go

.PHONY: test demo build vet bench bench-go fuzz

test: vet
	$(GO) test -race -count=1 -timeout 40m ./...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o bin/rowhook ./cmd/rowhook

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
