package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/rowhook/rowhook/internal/demo"
)

func init() {
	register(command{name: "demo", summary: "run rowhook end to end on a private MariaDB pair, a Vtiger schema and a local receiver", example: []string{"rowhook demo --keep"}, run: runDemo})
}

func runDemo(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.err)
	keep := fs.Bool("keep", false, "keep everything running after the demo until Ctrl-C (try rowhook tail, the admin API, /metrics)")
	verbose := fs.Bool("v", false, "show rowhook's logs")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook demo [--keep] [-v]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Starts a private MariaDB primary and replica (installing mariadb-server with apt-get when run")
		fmt.Fprintln(io.err, "as root and it is missing), loads Vtiger's schema, starts a local receiver and rowhook, creates")
		fmt.Fprintln(io.err, "an opportunity the way Vtiger does, and shows the delivery, its body, the value written back")
		fmt.Fprintln(io.err, "and the metrics. Everything lives in a temporary directory and is removed at the end.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	o := demo.Options{Out: io.out, Keep: *keep, Version: version}
	if *verbose {
		o.Log = io.err
	}
	return demo.Run(ctx, o)
}
