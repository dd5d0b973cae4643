package tests

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Stand-in backends for the gateway test. Each speaks the exact wire
// protocol of the store it stands in for, listens on 127.0.0.1 only, records
// what it was sent and stops with the test.

// listen returns a loopback listener closed at the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l := listenLoopback(t)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// serveHTTP serves h on a loopback port until the test ends.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	l := listen(t)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return l.Addr().String()
}

// otlpStore records OTLP payloads and the request metadata they came with.
type otlpStore struct {
	mu      sync.Mutex
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
	logs    []plog.Logs
	headers []http.Header // HTTP headers, or gRPC metadata as headers
}

func (s *otlpStore) snapshot() (traces []ptrace.Traces, metrics []pmetric.Metrics, logs []plog.Logs, headers []http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ptrace.Traces(nil), s.traces...), append([]pmetric.Metrics(nil), s.metrics...),
		append([]plog.Logs(nil), s.logs...), append([]http.Header(nil), s.headers...)
}

// readBody reads a request body, gunzipping it when the sender compressed it.
func readBody(r *http.Request) ([]byte, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		body = zr
	}
	return io.ReadAll(io.LimitReader(body, 64<<20))
}

// otlpHTTPStandIn serves OTLP/HTTP (protobuf) under prefix, as a vendor
// endpoint (prefix "/v1/") or Loki's native OTLP endpoint ("/otlp/v1/") does.
func otlpHTTPStandIn(t *testing.T, prefix string) (string, *otlpStore) {
	store := &otlpStore{}
	mux := http.NewServeMux()
	handle := func(signal string, decode func([]byte) error) {
		mux.HandleFunc("POST "+prefix+signal, func(w http.ResponseWriter, r *http.Request) {
			body, err := readBody(r)
			if err == nil {
				err = decode(body)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			store.mu.Lock()
			store.headers = append(store.headers, r.Header.Clone())
			store.mu.Unlock()
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusOK)
		})
	}
	handle("traces", func(b []byte) error {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		store.traces = append(store.traces, req.Traces())
		return nil
	})
	handle("metrics", func(b []byte) error {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		store.metrics = append(store.metrics, req.Metrics())
		return nil
	})
	handle("logs", func(b []byte) error {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		store.logs = append(store.logs, req.Logs())
		return nil
	})
	return "http://" + serveHTTP(t, mux), store
}

// tempoStandIn is an OTLP/gRPC trace receiver, as Tempo's distributor is.
type tempoStandIn struct {
	ptraceotlp.UnimplementedGRPCServer
	store *otlpStore
}

func (s *tempoStandIn) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	h := http.Header{}
	for k, v := range md {
		h[http.CanonicalHeaderKey(k)] = v
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	td := ptrace.NewTraces()
	req.Traces().CopyTo(td)
	s.store.traces = append(s.store.traces, td)
	s.store.headers = append(s.store.headers, h)
	return ptraceotlp.NewExportResponse(), nil
}

func otlpGRPCStandIn(t *testing.T) (string, *otlpStore) {
	store := &otlpStore{}
	l := listen(t)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &tempoStandIn{store: store})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String(), store
}

// esDoc is one document of a bulk request, with the index it was sent to.
type esDoc struct {
	Index string
	Doc   map[string]any
}

// esStandIn answers the Elasticsearch API the exporter uses: the product
// check on GET / and the _bulk endpoint (NDJSON action and document lines),
// recording every document.
type esStandIn struct {
	mu   sync.Mutex
	docs []esDoc
	auth []string
}

func elasticsearchStandIn(t *testing.T) (string, *esStandIn) {
	es := &esStandIn{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/":
			fmt.Fprint(w, `{"name":"stand-in","cluster_name":"fabric","version":{"number":"8.17.0","build_flavor":"default"},"tagline":"You Know, for Search"}`)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/_bulk"):
			body, err := readBody(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			items, err := es.bulk(body, r.URL.Path)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":{"type":"parse_exception","reason":%q},"status":400}`, err.Error())
				return
			}
			es.mu.Lock()
			es.auth = append(es.auth, r.Header.Get("Authorization"))
			es.mu.Unlock()
			resp := map[string]any{"took": 1, "errors": false, "items": items}
			_ = json.NewEncoder(w).Encode(resp)
		default:
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, `{}`)
		}
	})
	return "http://" + serveHTTP(t, handler), es
}

func (es *esStandIn) bulk(body []byte, path string) ([]map[string]any, error) {
	defaultIndex := strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/_bulk")
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var items []map[string]any
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var action map[string]map[string]any
		if err := json.Unmarshal(line, &action); err != nil {
			return nil, fmt.Errorf("action line: %w", err)
		}
		if len(action) != 1 {
			return nil, fmt.Errorf("action line with %d actions", len(action))
		}
		for op, meta := range action {
			index, _ := meta["_index"].(string)
			if index == "" {
				index = defaultIndex
			}
			if !sc.Scan() {
				return nil, fmt.Errorf("%s without a document", op)
			}
			var doc map[string]any
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				return nil, fmt.Errorf("document: %w", err)
			}
			es.mu.Lock()
			es.docs = append(es.docs, esDoc{Index: index, Doc: doc})
			es.mu.Unlock()
			items = append(items, map[string]any{op: map[string]any{"_index": index, "status": 201, "result": "created"}})
		}
	}
	return items, sc.Err()
}

func (es *esStandIn) snapshot() ([]esDoc, []string) {
	es.mu.Lock()
	defer es.mu.Unlock()
	return append([]esDoc(nil), es.docs...), append([]string(nil), es.auth...)
}

// prometheusServer runs Debian's Prometheus with its remote-write receiver on
// a loopback port and a temporary data directory (prometheusProcess).
func prometheusServer(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("prometheus"); err != nil && os.Getenv("FABRIC_BIN") == "" {
		t.Skip("prometheus is not installed")
	}
	return newPrometheusProcess(t).url()
}

// promSeries returns the label sets of the series matching a selector.
func promSeries(t testingT, base, selector string) []map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/series?match[]=" + url.QueryEscape(selector))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Status string              `json:"status"`
		Data   []map[string]string `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, "success", out.Status)
	return out.Data
}
