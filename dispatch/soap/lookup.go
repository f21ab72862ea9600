package soap

import (
	"encoding/json"
	"errors"
	"net/http"
)

// OperationsDoc is the JSON answer of the operations look-up (rowhook soap
// operations --json and the admin API).
type OperationsDoc struct {
	WSDL       string      `json:"wsdl"`
	Service    string      `json:"service,omitempty"`
	Namespace  string      `json:"target_namespace,omitempty"`
	Operations []Operation `json:"operations"`
}

// ParamsDoc is the JSON answer of the parameters look-up.
type ParamsDoc struct {
	Operation string   `json:"operation"`
	Version   string   `json:"soap_version"`
	Style     string   `json:"style"`
	Use       string   `json:"use"`
	Action    string   `json:"soap_action"`
	Wrapper   string   `json:"wrapper,omitempty"`
	Params    []*Param `json:"params"`
}

// NewOperationsDoc describes svc's operations.
func NewOperationsDoc(svc *Service) OperationsDoc {
	return OperationsDoc{WSDL: svc.Location, Service: svc.Name, Namespace: svc.TargetNamespace, Operations: svc.Operations()}
}

// NewParamsDoc describes op's input parameters.
func NewParamsDoc(op *Operation) (ParamsDoc, error) {
	params, err := op.Params()
	if err != nil {
		return ParamsDoc{}, err
	}
	if params == nil {
		params = []*Param{}
	}
	return ParamsDoc{Operation: op.Name, Version: op.Version, Style: op.Style, Use: op.Use, Action: op.Action, Wrapper: op.Wrapper(), Params: params}, nil
}

// LookupHandler serves the two look-ups for a UI building a mapping:
//
//	GET ?wsdl=URL                          → OperationsDoc
//	GET ?wsdl=URL&operation=NAME[&soap_version=1.2] → ParamsDoc
//
// Errors are {"error": "..."} with 400 (bad request, unknown operation) or
// 502 (the WSDL could not be loaded). The caller mounts it behind its own
// authentication, and should give the Loader a client that refuses
// addresses the server must not reach (the WSDL URL comes from the user).
func LookupHandler(loader *Loader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
			return
		}
		q := r.URL.Query()
		wsdl := q.Get("wsdl")
		if wsdl == "" || !isRemote(wsdl) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "wsdl must be an http(s) URL"})
			return
		}
		version := q.Get("soap_version")
		if version != "" && version != V11 && version != V12 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "soap_version must be 1.1 or 1.2"})
			return
		}
		svc, err := loader.Load(r.Context(), wsdl)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		name := q.Get("operation")
		if name == "" {
			writeJSON(w, http.StatusOK, NewOperationsDoc(svc))
			return
		}
		op, err := svc.Operation(name, version)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		doc, err := NewParamsDoc(op)
		if err != nil {
			status := http.StatusBadGateway
			if !errors.Is(err, ErrBadWSDL) {
				status = http.StatusInternalServerError
			}
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, doc)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
