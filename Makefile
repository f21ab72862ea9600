# The README's two commands: `make demo` and `make test`.
GO ?= go

.PHONY: test demo build vet bench

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

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...
