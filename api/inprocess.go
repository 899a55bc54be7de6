package api

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// NewHandlerClient calls h in process: the same routes and handlers as
// over a socket, without one. The web console calls its own host's API
// this way, with the session's principal put in each request's context by
// h (a wrapper the cluster builds).
func NewHandlerClient(h http.Handler, target string) *Client {
	return &Client{base: "http://in-process", hc: &http.Client{Transport: handlerTransport{h}}, Target: target}
}

type handlerTransport struct{ h http.Handler }

// RoundTrip serves r with the handler and answers what it wrote.
func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
	// What a server gives a handler and a client request lacks.
	in := r.Clone(r.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RemoteAddr, in.RequestURI = "in-process", r.URL.RequestURI()
	t.h.ServeHTTP(w, in)
	_ = in.Body.Close()
	return &http.Response{
		Status: strconv.Itoa(w.code) + " " + http.StatusText(w.code), StatusCode: w.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: r,
	}, nil
}

// bufferedResponse is an http.ResponseWriter that keeps what is written.
type bufferedResponse struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
