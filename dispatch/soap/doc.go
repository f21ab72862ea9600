// Package soap calls SOAP web services described by a WSDL: it loads the
// WSDL and its schemas (from a file or over HTTP, with imports), lists the
// operations and their input parameters, builds request envelopes from a
// mapping of parameter paths to values, and parses responses into a tree
// that writeback expressions address (response.soap.AddResult), turning a
// SOAP Fault into a typed *Fault.
//
// The dispatcher plugs it in for webhooks with `content_type: soap`: an
// Encoder builds the envelope when an event is enqueued (so every attempt
// sends the same bytes, and the delivery log shows them), Security adds
// the WS-Security header per attempt (fresh nonce and timestamp; the
// password never reaches the stored body), and CheckResponse classifies
// the answer. Caller performs a whole call for the CLI and for tests.
package soap

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrUnknownOperation: the WSDL has no operation by that name (or not
	// in the requested SOAP version).
	ErrUnknownOperation = errors.New("soap: unknown operation")
	// ErrUnknownParam: a mapping names a parameter the operation lacks.
	ErrUnknownParam = errors.New("soap: unknown parameter")
	// ErrNotSOAP: a response body is not a SOAP envelope.
	ErrNotSOAP = errors.New("soap: response is not a SOAP envelope")
	// ErrBadWSDL: a document is not a WSDL 1.1 definition or is malformed.
	ErrBadWSDL = errors.New("soap: bad WSDL")
	// ErrTooLarge: a fetched document exceeds the size limit.
	ErrTooLarge = errors.New("soap: document too large")
)

// Namespaces of the specifications this package speaks.
const (
	NSWSDL       = "http://schemas.xmlsoap.org/wsdl/"
	NSWSDLSOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
	NSWSDLSOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
	NSSOAP11     = "http://schemas.xmlsoap.org/soap/envelope/"
	NSSOAP12     = "http://www.w3.org/2003/05/soap-envelope"
	NSSOAPEnc11  = "http://schemas.xmlsoap.org/soap/encoding/"
	NSSOAPEnc12  = "http://www.w3.org/2003/05/soap-encoding"
	NSXSD        = "http://www.w3.org/2001/XMLSchema"
	NSXSI        = "http://www.w3.org/2001/XMLSchema-instance"
	NSWSSE       = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NSWSU        = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
)

// SOAP versions as written in the configuration.
const (
	V11 = "1.1"
	V12 = "1.2"
)
