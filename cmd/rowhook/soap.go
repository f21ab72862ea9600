package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rowhook/rowhook/dispatch/soap"
)

func init() {
	register(command{name: "soap", summary: "list a SOAP service's operations and an operation's parameters (from its WSDL)", example: []string{"rowhook soap operations --wsdl https://erp.example.com/service?wsdl", "rowhook soap params --wsdl service.wsdl --operation CreateOrder"}, run: runSOAP})
}

// soapPasswordEnv holds the password for --user (never on the command line).
const soapPasswordEnv = "ROWHOOK_WSDL_PASSWORD"

func soapUsage(io stdio) {
	fmt.Fprintln(io.err, "Usage:")
	fmt.Fprintln(io.err, "  rowhook soap operations --wsdl URL|FILE [--json]")
	fmt.Fprintln(io.err, "  rowhook soap params --wsdl URL|FILE --operation NAME [--soap-version 1.1|1.2] [--json]")
	fmt.Fprintln(io.err)
	fmt.Fprintln(io.err, "operations lists the operations of every SOAP binding with their SOAP action, style and messages;")
	fmt.Fprintln(io.err, "params lists an operation's input parameters with their XSD types and nesting: the PATH column is")
	fmt.Fprintln(io.err, "what a webhook's soap.params mapping names (order.customer.name: row.accountname).")
	fmt.Fprintln(io.err, "A protected WSDL: --user NAME, with the password in $"+soapPasswordEnv+".")
}

func runSOAP(ctx context.Context, args []string, io stdio) error {
	if len(args) == 0 {
		soapUsage(io)
		return usagef("soap: missing subcommand (operations or params)")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return runSOAP(ctx, []string{"params", "--help"}, io) // params' flags are operations' and two more
	}
	sub := args[0]
	if sub != "operations" && sub != "params" {
		soapUsage(io)
		return usagef("soap: unknown subcommand %q (operations or params)", sub)
	}
	fs := flag.NewFlagSet("soap "+sub, flag.ContinueOnError)
	fs.SetOutput(io.err)
	wsdl := fs.String("wsdl", "", "the WSDL: an http(s) URL or a file path")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	user := fs.String("user", "", "HTTP Basic user for fetching the WSDL (password in $"+soapPasswordEnv+")")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout for fetching the WSDL and its imports")
	var operation, version *string
	if sub == "params" {
		operation = fs.String("operation", "", "the operation's name")
		version = fs.String("soap-version", "", "1.1 or 1.2 (default: the binding of the first port that offers it)")
	}
	fs.Usage = func() { soapUsage(io); fmt.Fprintln(io.err); fs.PrintDefaults() }
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("soap %s: unexpected argument %q", sub, fs.Arg(0))
	}
	if *wsdl == "" {
		return usagef("soap %s: --wsdl is required", sub)
	}
	if sub == "params" {
		if *operation == "" {
			return usagef("soap params: --operation is required (list them with: rowhook soap operations --wsdl %s)", *wsdl)
		}
		if *version != "" && *version != soap.V11 && *version != soap.V12 {
			return usagef("soap params: --soap-version must be 1.1 or 1.2, got %q", *version)
		}
	}
	loader := &soap.Loader{Client: &http.Client{Timeout: *timeout}}
	if *user != "" {
		u, pass := *user, os.Getenv(soapPasswordEnv)
		loader.Authorize = func(r *http.Request) { r.SetBasicAuth(u, pass) }
	}
	svc, err := loader.Load(ctx, *wsdl)
	if err != nil {
		return err
	}
	if sub == "operations" {
		return printOperations(io, svc, *asJSON)
	}
	op, err := svc.Operation(*operation, *version)
	if err != nil {
		return err
	}
	params, err := op.Params()
	if err != nil {
		return err
	}
	return printParams(io, op, params, *asJSON)
}

func printOperations(io stdio, svc *soap.Service, asJSON bool) error {
	ops := svc.Operations()
	if asJSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(soap.NewOperationsDoc(svc))
	}
	fmt.Fprintf(io.out, "%s (%s): %d operations\n\n", cmp.Or(svc.Name, "service"), svc.Location, len(ops))
	tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tSOAP\tSTYLE\tSOAP ACTION\tINPUT\tOUTPUT\tENDPOINT")
	for _, o := range ops {
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", o.Name, o.Version, o.Style, o.Use,
			cmp.Or(o.Action, `""`), o.Input, cmp.Or(o.Output, "(one-way)"), cmp.Or(o.Endpoint, "(none: set endpoint)"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	documented := map[string]bool{}
	for _, o := range ops {
		if o.Doc != "" && !documented[o.Name] {
			if len(documented) == 0 {
				fmt.Fprintln(io.out)
			}
			documented[o.Name] = true
			fmt.Fprintf(io.out, "%s: %s\n", o.Name, o.Doc)
		}
	}
	return nil
}

func printParams(io stdio, op *soap.Operation, params []*soap.Param, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		doc, err := soap.NewParamsDoc(op)
		if err != nil {
			return err
		}
		return enc.Encode(doc)
	}
	fmt.Fprintf(io.out, "%s (SOAP %s, %s/%s", op.Name, op.Version, op.Style, op.Use)
	if w := op.Wrapper(); w != "" {
		fmt.Fprintf(io.out, ", request element %s", w)
	}
	fmt.Fprintln(io.out, ")")
	if len(params) == 0 {
		fmt.Fprintln(io.out, "\nno input parameters")
		return nil
	}
	fmt.Fprintln(io.out)
	tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tTYPE\tOCCURS\tNOTES")
	var walk func(ps []*soap.Param, prefix string)
	walk = func(ps []*soap.Param, prefix string) {
		for _, p := range ps {
			path := p.Name
			if prefix != "" {
				path = prefix + "." + p.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", path, paramType(p), occurs(p), paramNotes(p))
			if p.EncodedArray {
				continue // mapped as a list of its item type
			}
			if !p.IsArray() {
				walk(p.Children, path)
			} else if len(p.Children) > 0 {
				walk(p.Children, path+"[]")
			}
		}
	}
	walk(params, "")
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(io.out, "\nMap a complex parameter field by field (order.customer.name) or whole, to an object; map an array ([]) to a list.")
	return nil
}

func paramType(p *soap.Param) string {
	switch {
	case p.EncodedArray && len(p.Children) == 1:
		return p.Type + " (list of " + paramType(p.Children[0]) + ")"
	case p.Any:
		return "xsd:any"
	case p.Type != "" && p.Base != "" && p.Base != p.Type:
		return p.Type + " (" + p.Base + ")"
	case p.Type != "":
		return p.Type
	case p.Complex:
		return "(complex)"
	}
	return p.Base
}

func occurs(p *soap.Param) string {
	max := "*"
	if p.MaxOccurs >= 0 {
		max = strconv.Itoa(p.MaxOccurs)
	}
	if strconv.Itoa(p.MinOccurs) == max {
		return max
	}
	return strconv.Itoa(p.MinOccurs) + ".." + max
}

func paramNotes(p *soap.Param) string {
	var notes []string
	if p.Attribute {
		notes = append(notes, "attribute")
	}
	if p.IsArray() {
		notes = append(notes, "array")
	}
	if p.EncodedArray {
		notes = append(notes, "SOAP-encoded array")
	}
	if p.Choice {
		notes = append(notes, "choice")
	}
	if p.Nillable {
		notes = append(notes, "nillable")
	}
	if p.Recursive {
		notes = append(notes, "recursive")
	}
	if p.Any {
		notes = append(notes, "wildcard: cannot be mapped")
	}
	if p.Namespace == "" && !p.Attribute {
		notes = append(notes, "unqualified")
	}
	if len(p.Enum) > 0 {
		notes = append(notes, "one of: "+strings.Join(p.Enum, ", "))
	}
	keys := make([]string, 0, len(p.Facets))
	for k := range p.Facets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		notes = append(notes, k+"="+p.Facets[k])
	}
	if p.Doc != "" {
		d := p.Doc
		if r := []rune(d); len(r) > 60 {
			d = string(r[:60]) + "…"
		}
		notes = append(notes, strconv.Quote(d))
	}
	return strings.Join(notes, "; ")
}
