package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func init() {
	register(command{name: "version", summary: "print rowhook's version", run: runVersion})
}

func runVersion(_ context.Context, _ []string, io stdio) error {
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(io.out, "rowhook %s (%s)\n", version, goVersion)
	return nil
}
