package dispatch

import (
	"bytes"
	"io"
	"strconv"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func parseUint(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }
