// Command rowhook is a change-data-capture sidecar for CRM databases: it tails
// a MySQL/MariaDB replica's binlog, evaluates workflow rules on row changes,
// delivers event bodies to web services durably, and writes response values
// back into the CRM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/pipeline"
)

func main() {
	runtimeDefaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// runtimeDefaults sets rowhook's GC settings unless the environment sets them.
func runtimeDefaults() {
	// rowhook allocates per row and keeps little live data: trade some memory
	// for much less GC work (see docs/cdc.md) unless the operator set GOGC.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// ...but within a soft memory limit, so that the heap does not grow to
	// five times what is live when much is live at once (catching up):
	// the GC runs more often near the limit instead. It is soft: a larger
	// live heap (a transaction of a million rows is held whole until its
	// commit) is still served, with more GC work, never an out-of-memory
	// error. GOMEMLIMIT overrides it (docs/deploy.md).
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(pipeline.DefaultMemoryLimit)
	}
}

// stdio is a command's standard streams, injected so tests can capture them.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command is one rowhook subcommand. Each lives in its own file and adds
// itself to commands from an init function.
type command struct {
	name, summary string
	example       []string // command lines shown under "Example:" in --help
	run           func(ctx context.Context, args []string, io stdio) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("rowhook: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func run(ctx context.Context, args []string, io stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return runWithHelp(ctx, c, []string{"--help"}, io)
			}
		}
		printUsage(io.out)
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	if args[0] == "--version" {
		args[0] = "version" // the same output as `rowhook version`
	}
	c, ok := commands[args[0]]
	if !ok {
		printUsage(io.err)
		return usagef("unknown command %q", args[0])
	}
	return runWithHelp(ctx, c, args[1:], io)
}

// runWithHelp runs c; after its --help, the examples follow.
func runWithHelp(ctx context.Context, c command, args []string, io stdio) error {
	err := c.run(ctx, args, io)
	if i := slices.IndexFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "--" }); err == nil && i >= 0 && args[i] != "--" {
		fmt.Fprintf(io.err, "\nExample:\n  %s\n", strings.Join(c.example, "\n  "))
	}
	return err
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "rowhook: change-data-capture webhooks for CRM databases (MySQL/MariaDB binlog → rules → web services)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: rowhook COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'rowhook COMMAND --help' for a command's flags.")
}

// exitCode prints err and maps it to an exit status: 0 success, 2 usage,
// 1 anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	msg := strings.TrimSpace(err.Error())
	fmt.Fprintln(stderr, "rowhook:", strings.ReplaceAll(msg, "\n", "\nrowhook: "))
	if errors.Is(err, cdc.ErrPurged) {
		fmt.Fprintln(stderr, "rowhook: recover: `rowhook position --config FILE` shows what is left; `rowhook position --config FILE --set earliest|current|gtid:SET|file:NAME:POS` stores a new start (docs/cdc.md)")
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// onFlagSet, when set (by a test), sees every flag set parseFlags parses.
var onFlagSet func(*flag.FlagSet)

// parseFlags parses a command's flags: help is true after -h/--help (the
// usage is printed, the command does nothing more); a bad flag is a usage
// error named after the flag set ("check: ...").
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if onFlagSet != nil {
		onFlagSet(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, usagef("%s: %v", fs.Name(), err)
	}
	return false, nil
}
