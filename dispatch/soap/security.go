package soap

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- WS-Security UsernameToken Profile 1.0 defines PasswordDigest with SHA-1
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Password types of the UsernameToken profile.
const (
	PasswordText   = "PasswordText"
	PasswordDigest = "PasswordDigest"
)

const (
	uriPasswordText   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
	uriPasswordDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	uriBase64Binary   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// Security adds a WS-Security header with a UsernameToken to envelopes. It
// runs per attempt, so every attempt carries a fresh nonce and creation
// time, and the password never reaches the stored request body.
type Security struct {
	// Username and Password are the credentials.
	Username string
	Password string
	// Type is PasswordText or PasswordDigest (default PasswordDigest).
	Type string
	// TTL, when positive, adds a wsu:Timestamp expiring after TTL.
	TTL time.Duration
	// Now and Rand default to time.Now and crypto/rand; tests set them.
	Now  func() time.Time
	Rand io.Reader
}

// header renders the wsse:Security element; envPrefix is the envelope's
// namespace prefix, for mustUnderstand.
func (s *Security) header(envPrefix, version string) ([]byte, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	t := now().UTC()
	created := t.Format("2006-01-02T15:04:05.000Z")
	nonce := make([]byte, 16)
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("ws-security nonce: %w", err)
	}
	must := "1"
	if version == V12 {
		must = "true"
	}
	mu := "mustUnderstand"
	if envPrefix != "" {
		mu = envPrefix + ":" + mu
	}
	var b bytes.Buffer
	b.WriteString(`<wsse:Security xmlns:wsse="` + NSWSSE + `" xmlns:wsu="` + NSWSU + `" ` + mu + `="` + must + `">`)
	if s.TTL > 0 {
		b.WriteString(`<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>` + created + `</wsu:Created><wsu:Expires>` +
			t.Add(s.TTL).Format("2006-01-02T15:04:05.000Z") + `</wsu:Expires></wsu:Timestamp>`)
	}
	b.WriteString(`<wsse:UsernameToken wsu:Id="UsernameToken-1"><wsse:Username>` + escText(s.Username) + `</wsse:Username>`)
	if s.Type == PasswordText {
		b.WriteString(`<wsse:Password Type="` + uriPasswordText + `">` + escText(s.Password) + `</wsse:Password>`)
	} else {
		h := sha1.New() // #nosec G401 -- mandated by the profile
		h.Write(nonce)
		h.Write([]byte(created))
		h.Write([]byte(s.Password))
		b.WriteString(`<wsse:Password Type="` + uriPasswordDigest + `">` + base64.StdEncoding.EncodeToString(h.Sum(nil)) + `</wsse:Password>`)
	}
	b.WriteString(`<wsse:Nonce EncodingType="` + uriBase64Binary + `">` + base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce>`)
	b.WriteString(`<wsu:Created>` + created + `</wsu:Created></wsse:UsernameToken></wsse:Security>`)
	return b.Bytes(), nil
}

// Apply returns envelope with the Security header added (inside an
// existing Header, or in a new Header before the Body).
func (s *Security) Apply(envelope []byte) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(envelope))
	depth := 0
	var envPrefix, envNS string
	for {
		off := dec.InputOffset()
		tok, err := dec.RawToken()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("ws-security: %w: %v", ErrNotSOAP, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				envPrefix = t.Name.Space
				for _, a := range t.Attr {
					if (a.Name.Space == "xmlns" && a.Name.Local == envPrefix) || (envPrefix == "" && a.Name.Space == "" && a.Name.Local == "xmlns") {
						envNS = a.Value
					}
				}
			}
			if depth == 2 && t.Name.Space == envPrefix && t.Name.Local == "Body" {
				version := V11
				if envNS == NSSOAP12 {
					version = V12
				}
				h, err := s.header(envPrefix, version)
				if err != nil {
					return nil, err
				}
				hdr := "Header"
				if envPrefix != "" {
					hdr = envPrefix + ":Header"
				}
				out := make([]byte, 0, len(envelope)+len(h)+32)
				out = append(out, envelope[:off]...)
				out = append(out, "<"+hdr+">"...)
				out = append(out, h...)
				out = append(out, "</"+hdr+">"...)
				return append(out, envelope[off:]...), nil
			}
		case xml.EndElement:
			if depth == 2 && t.Name.Space == envPrefix && t.Name.Local == "Header" {
				version := V11
				if envNS == NSSOAP12 {
					version = V12
				}
				h, err := s.header(envPrefix, version)
				if err != nil {
					return nil, err
				}
				out := make([]byte, 0, len(envelope)+len(h))
				out = append(out, envelope[:off]...)
				out = append(out, h...)
				return append(out, envelope[off:]...), nil
			}
			depth--
		}
	}
	return nil, fmt.Errorf("ws-security: %w: no Body element", ErrNotSOAP)
}

// ApplyRequest replaces req's body with the envelope plus the Security
// header, fixing Content-Length and GetBody.
func (s *Security) ApplyRequest(req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody {
		return errors.New("ws-security: request has no body")
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return fmt.Errorf("ws-security: read body: %w", err)
	}
	out, err := s.Apply(body)
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(out))
	req.ContentLength = int64(len(out))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	return nil
}
