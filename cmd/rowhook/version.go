package main

import (
	"context"
	"flag"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func init() {
	register(command{name: "version", summary: "print rowhook's version", example: []string{"rowhook version", "rowhook --version"}, run: runVersion})
}

func runVersion(_ context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.err)
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook version (or rowhook --version): prints the version and the Go release; no flags.")
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(io.out, "rowhook %s (%s)\n", version, goVersion)
	return nil
}
