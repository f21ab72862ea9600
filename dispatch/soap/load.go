package soap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/rowhook/rowhook/internal/redact"
)

// Loader limits.
const (
	// DefaultMaxDocumentBytes caps each fetched WSDL or XSD document.
	DefaultMaxDocumentBytes = 16 << 20
	// DefaultMaxDocuments caps how many documents one WSDL may pull in.
	DefaultMaxDocuments = 256
	// DefaultFetchTimeout bounds one document fetch when the client has no
	// timeout of its own.
	DefaultFetchTimeout = 30 * time.Second
)

// Loader loads a WSDL and everything it imports, from files or over HTTP.
// The zero value is usable; set Client to control TLS, proxies and
// timeouts.
type Loader struct {
	// Client fetches http(s) documents (default: a client with a 30s
	// timeout).
	Client *http.Client
	// Authorize, when set, adds credentials to every document request
	// (HTTP Basic for a protected WSDL).
	Authorize func(*http.Request)
	// MaxDocumentBytes caps each document (default DefaultMaxDocumentBytes).
	MaxDocumentBytes int64
	// MaxDocuments caps the number of documents (default DefaultMaxDocuments).
	MaxDocuments int
}

// Load reads the WSDL at location (an http(s) URL, a file:// URL or a file
// path) with its wsdl:import, xsd:import and xsd:include documents, and
// builds the Service. Documents fetched over HTTP may only import other
// http(s) documents, never local files.
func (l *Loader) Load(ctx context.Context, location string) (*Service, error) {
	ld := &loadRun{l: l, ctx: ctx, seen: map[string]bool{}, set: newSchemaSet()}
	loc, err := normalizeLocation(location)
	if err != nil {
		return nil, fmt.Errorf("load wsdl %s: %w", showLocation(location), err)
	}
	if err := ld.wsdl(loc, true); err != nil {
		return nil, fmt.Errorf("load wsdl %s: %w", showLocation(location), err)
	}
	svc, err := newService(location, ld.wsdls, ld.set, ld.docs)
	if err != nil {
		return nil, fmt.Errorf("load wsdl %s: %w", showLocation(location), err)
	}
	return svc, nil
}

type loadRun struct {
	l     *Loader
	ctx   context.Context
	seen  map[string]bool
	set   *schemaSet
	wsdls []loadedDoc
	docs  []string
}

// normalizeLocation turns a file path into an absolute path and checks
// URL schemes.
func normalizeLocation(loc string) (string, error) {
	if u, err := url.Parse(loc); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		switch strings.ToLower(u.Scheme) {
		case "http", "https":
			return loc, nil
		case "file":
			return filepath.Clean(u.Path), nil
		default:
			return "", fmt.Errorf("unsupported URL scheme %q (http, https, file or a path)", u.Scheme)
		}
	}
	abs, err := filepath.Abs(loc)
	if err != nil {
		return "", err
	}
	return abs, nil
}

func isRemote(loc string) bool {
	l := strings.ToLower(loc)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// resolve makes ref (a schemaLocation or wsdl:import location) absolute
// against base.
func resolve(base, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if u, err := url.Parse(ref); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		loc, err := normalizeLocation(ref)
		if err != nil {
			return "", err
		}
		if isRemote(base) && !isRemote(loc) {
			return "", fmt.Errorf("%s (fetched over HTTP) may not import the local file %s", base, ref)
		}
		return loc, nil
	}
	if isRemote(base) {
		b, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		r, err := url.Parse(ref)
		if err != nil {
			return "", fmt.Errorf("bad location %q: %w", ref, err)
		}
		return b.ResolveReference(r).String(), nil
	}
	if filepath.IsAbs(ref) {
		return filepath.Clean(ref), nil
	}
	return filepath.Join(filepath.Dir(base), filepath.FromSlash(ref)), nil
}

func (ld *loadRun) fetch(loc string) ([]byte, error) {
	max := ld.l.MaxDocuments
	if max <= 0 {
		max = DefaultMaxDocuments
	}
	if len(ld.docs) >= max {
		return nil, fmt.Errorf("more than %d documents imported", max)
	}
	limit := ld.l.MaxDocumentBytes
	if limit <= 0 {
		limit = DefaultMaxDocumentBytes
	}
	if !isRemote(loc) {
		f, err := os.Open(loc)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, limit, loc)
	}
	client := ld.l.Client
	if client == nil {
		client = &http.Client{Timeout: DefaultFetchTimeout}
	}
	ctx := ld.ctx
	if client.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultFetchTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/xml, application/xml, application/wsdl+xml, */*;q=0.5")
	if ld.l.Authorize != nil {
		ld.l.Authorize(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, redact.Error(err) // the message quotes the URL, api keys and all
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return nil, fmt.Errorf("GET %s: HTTP %s", showLocation(loc), resp.Status)
	}
	return readLimited(resp.Body, limit, loc)
}

func readLimited(r io.Reader, limit int64, loc string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, showLocation(loc), limit)
	}
	return b, nil
}

// showLocation is a document location for messages: a URL as redact.URL
// shows it (no credentials, no query values), a file path as it is.
func showLocation(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return redact.URL(s)
}

// parseXML parses a document into an element tree.
func parseXML(loc string, data []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = charsetReader
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadWSDL, showLocation(loc), err)
	}
	root := doc.Root()
	if root == nil {
		return nil, fmt.Errorf("%w: %s: no root element", ErrBadWSDL, showLocation(loc))
	}
	return root, nil
}

// charsetReader accepts UTF-8 and its common aliases, and ISO-8859-1.
func charsetReader(charset string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1":
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		for _, c := range b {
			out.WriteRune(rune(c))
		}
		return &out, nil
	}
	return nil, fmt.Errorf("unsupported charset %q (use UTF-8)", charset)
}

func (ld *loadRun) wsdl(loc string, main bool) error {
	if ld.seen[loc] {
		return nil
	}
	ld.seen[loc] = true
	data, err := ld.fetch(loc)
	if err != nil {
		return err
	}
	return ld.wsdlData(loc, data, main)
}

func (ld *loadRun) wsdlData(loc string, data []byte, main bool) error {
	ld.seen[loc] = true
	root, err := parseXML(loc, data)
	if err != nil {
		return err
	}
	ld.docs = append(ld.docs, showLocation(loc))
	if is(root, NSXSD, "schema") {
		if main {
			return fmt.Errorf("%w: %s is an XML Schema, not a WSDL", ErrBadWSDL, showLocation(loc))
		}
		return ld.schema(loc, root, "")
	}
	if !is(root, NSWSDL, "definitions") {
		what := "{" + space(root) + "}" + root.Tag
		if space(root) == "http://www.w3.org/ns/wsdl" {
			return fmt.Errorf("%w: %s is WSDL 2.0; rowhook reads WSDL 1.1 (most SOAP services publish both: try ?wsdl instead of ?wsdl2)", ErrBadWSDL, showLocation(loc))
		}
		return fmt.Errorf("%w: %s: root element is %s, not wsdl:definitions", ErrBadWSDL, showLocation(loc), what)
	}
	ld.wsdls = append(ld.wsdls, loadedDoc{location: loc, root: root})
	for _, imp := range children(root, NSWSDL, "import") {
		ref := attr(imp, "location")
		if ref == "" {
			continue
		}
		next, err := resolve(loc, ref)
		if err != nil {
			return fmt.Errorf("wsdl:import in %s: %w", showLocation(loc), err)
		}
		if err := ld.wsdl(next, false); err != nil {
			return fmt.Errorf("wsdl:import in %s: %w", showLocation(loc), err)
		}
	}
	if types := child(root, NSWSDL, "types"); types != nil {
		for _, sc := range children(types, NSXSD, "schema") {
			// Embedded schemas see the WSDL's namespace declarations: etree
			// resolves prefixes through the parents.
			if err := ld.schema(loc, sc, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// schema indexes one xsd:schema and loads what it imports and includes.
func (ld *loadRun) schema(loc string, root *etree.Element, chameleon string) error {
	sc := ld.set.add(root, chameleon)
	for _, c := range root.ChildElements() {
		if space(c) != NSXSD || (c.Tag != "import" && c.Tag != "include" && c.Tag != "redefine") {
			continue
		}
		ref := attr(c, "schemaLocation")
		if ref == "" {
			continue // resolved by namespace against the other loaded schemas
		}
		next, err := resolve(loc, ref)
		if err != nil {
			return fmt.Errorf("xsd:%s in %s: %w", c.Tag, showLocation(loc), err)
		}
		key := next
		if c.Tag != "import" && sc.tns != "" {
			key = next + "#" + sc.tns // a chameleon include can be taken into several namespaces
		}
		if ld.seen[key] {
			continue
		}
		ld.seen[key] = true
		data, err := ld.fetch(next)
		if err != nil {
			return fmt.Errorf("xsd:%s in %s: %w", c.Tag, showLocation(loc), err)
		}
		xroot, err := parseXML(next, data)
		if err != nil {
			return fmt.Errorf("xsd:%s in %s: %w", c.Tag, showLocation(loc), err)
		}
		if !is(xroot, NSXSD, "schema") {
			return fmt.Errorf("xsd:%s in %s: %w: %s is not an XML Schema", c.Tag, showLocation(loc), ErrBadWSDL, showLocation(next))
		}
		ld.docs = append(ld.docs, showLocation(next))
		cham := ""
		if c.Tag != "import" && attr(xroot, "targetNamespace") == "" {
			cham = sc.tns
		}
		if err := ld.schema(next, xroot, cham); err != nil {
			return err
		}
	}
	return nil
}
