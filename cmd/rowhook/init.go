package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/rowhook/rowhook/internal/pipeline"
)

func init() {
	register(command{name: "init", summary: "print a ready configuration for a Vtiger database (rowhook.example.yaml)", example: []string{"rowhook init > rowhook.yaml && rowhook check --offline --config rowhook.yaml"}, run: runInitCmd})
}

func runInitCmd(_ context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(io.err)
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook init > rowhook.yaml")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Prints a configuration for a Vtiger CRM database (the repository's")
		fmt.Fprintln(io.err, "rowhook.example.yaml): every setting to change is commented, secrets are")
		fmt.Fprintln(io.err, "${VAR:-…} or ${file:PATH} references, and `rowhook check --offline` accepts")
		fmt.Fprintln(io.err, "it as printed, with no environment variable set. It takes no flags.")
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("init takes no arguments (got %q); redirect its output to a file", fs.Args())
	}
	return runInit(io)
}

func runInit(io stdio) error {
	_, err := fmt.Fprint(io.out, pipeline.ExampleConfig)
	return err
}
