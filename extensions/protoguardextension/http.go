package protoguardextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension"

import (
	"bytes"
	"io"
	"mime"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

const (
	pbContentType   = "application/x-protobuf"
	jsonContentType = "application/json"
)

// maxPrealloc bounds the buffer allocated up front from a request's
// Content-Length: a sender may announce more than max_request_body_size lets
// it send.
const maxPrealloc = 4 << 20

// GetHTTPHandler wraps the OTLP/HTTP handler. confighttp places it after
// authentication, max_request_body_size and decompression, so it reads the
// decompressed body, limited in size. A POST to one of the configured paths
// with an OTLP content type is read whole and checked; a refused request is
// answered 400 with a google.rpc.Status (code InvalidArgument) in the
// request's encoding, as the otlp receiver answers its own errors; an
// accepted one goes on with its body replayed. Before that, the request's
// decoded-size estimate is held to max_decoded_size (413) and taken from
// the max_in_flight_decoded budget (503 if it cannot be had at once) until
// the receiver answers. Anything else passes untouched.
func (g *guard) GetHTTPHandler(next http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig, ok := g.paths[r.URL.Path]
		if !ok || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mediaType != pbContentType && mediaType != jsonContentType {
			next.ServeHTTP(w, r) // the receiver answers 415
			return
		}
		body, readErr := readBody(r)
		if readErr != nil {
			// The receiver answers a body it cannot read (over
			// max_request_body_size, a broken gzip stream): let it, with
			// the same bytes and the same error.
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{readErr}))
			next.ServeHTTP(w, r)
			return
		}
		var size int64
		var err *wirecheck.Error
		if mediaType == jsonContentType {
			size, err = g.checker.CheckJSONSize(sig, body)
		} else {
			size, err = g.checker.CheckProtoSize(sig, body)
		}
		if err == nil {
			err = g.admit(size)
		}
		if err != nil {
			g.refused(r.Context(), err, sig, transportHTTP)
			writeStatus(w, mediaType, err)
			return
		}
		// The budget is held until the receiver has answered: decoded, and
		// through the pipeline's synchronous part.
		defer g.release(size)
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	}), nil
}

func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= maxPrealloc {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// answers maps each refusal reason to its HTTP status and the code of the
// google.rpc.Status in the body (the gRPC code the gRPC side answers).
// OTLP/HTTP senders retry 503 and give up on 400 and 413.
var answers = [wirecheck.ReasonBusy + 1]struct {
	http int
	code codes.Code
}{
	wirecheck.ReasonDepth:     {http.StatusBadRequest, codes.InvalidArgument},
	wirecheck.ReasonMalformed: {http.StatusBadRequest, codes.InvalidArgument},
	wirecheck.ReasonUTF8:      {http.StatusBadRequest, codes.InvalidArgument},
	wirecheck.ReasonTooLarge:  {http.StatusRequestEntityTooLarge, codes.ResourceExhausted},
	wirecheck.ReasonBusy:      {http.StatusServiceUnavailable, codes.Unavailable},
}

// busyRetryAfter is the Retry-After of a busy refusal, in seconds: about
// how long requests that fill the budget take to decode and pass on.
const busyRetryAfter = "1"

// writeStatus answers a refusal with its HTTP status and a google.rpc.Status
// naming the cause, encoded as the request was (OTLP/HTTP's error
// response).
func writeStatus(w http.ResponseWriter, mediaType string, refusal *wirecheck.Error) {
	a := answers[refusal.Reason]
	st := status.New(a.code, refusal.Error()).Proto()
	var body []byte
	var err error
	if mediaType == jsonContentType {
		body, err = protojson.Marshal(st)
	} else {
		body, err = proto.Marshal(st)
	}
	if refusal.Reason == wirecheck.ReasonBusy {
		w.Header().Set("Retry-After", busyRetryAfter)
	}
	if err != nil { // not expected of a Status; answer in plain text
		http.Error(w, refusal.Error(), a.http)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(a.http)
	_, _ = w.Write(body)
}
