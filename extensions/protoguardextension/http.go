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
// accepted one goes on with its body replayed. Anything else passes
// untouched.
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
		var err *wirecheck.Error
		if mediaType == jsonContentType {
			err = g.checker.CheckJSON(body)
		} else {
			err = g.checker.CheckProto(sig, body)
		}
		if err != nil {
			g.refused(r.Context(), err, sig, transportHTTP)
			writeStatus(w, mediaType, err.Error())
			return
		}
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

// writeStatus answers 400 with a google.rpc.Status of code InvalidArgument,
// encoded as the request was (OTLP/HTTP's error response).
func writeStatus(w http.ResponseWriter, mediaType, msg string) {
	st := status.New(codes.InvalidArgument, msg).Proto()
	var body []byte
	var err error
	if mediaType == jsonContentType {
		body, err = protojson.Marshal(st)
	} else {
		body, err = proto.Marshal(st)
	}
	if err != nil { // not expected of a Status; answer in plain text
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
}
