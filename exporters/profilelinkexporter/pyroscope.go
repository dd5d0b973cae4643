package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"go.opentelemetry.io/collector/consumer/consumererror"
)

// pusher sends profiles to Pyroscope's Push API
// (push.v1.PusherService/Push over connect), as Grafana Alloy's
// pyroscope.write does, with the generated client of the official
// github.com/grafana/pyroscope/api module: one series per profile, its
// labels (__name__, service_name, ...) and one raw pprof.
//
// Pyroscope's /ingest endpoint is not used: it is the SDKs' legacy upload
// path, its handler decides the body's shape from the format parameter
// before looking at the content type, and it takes one profile per request.
type pusher struct {
	client   pushv1connect.PusherServiceClient
	tenant   string
	user     string
	password string
	bearer   string
}

func newPusher(httpClient *http.Client, cfg *Config) *pusher {
	return &pusher{
		client:   pushv1connect.NewPusherServiceClient(httpClient, strings.TrimSuffix(cfg.Endpoint, "/")),
		tenant:   cfg.TenantID,
		user:     cfg.BasicAuth.Username,
		password: string(cfg.BasicAuth.Password),
		bearer:   string(cfg.BearerToken),
	}
}

// errRejected marks a push Pyroscope will never accept.
var errRejected = errors.New("rejected by Pyroscope")

// push sends one request. A failure that can pass (Pyroscope unreachable,
// overloaded or failing) is returned as is, for the exporter helper to
// retry; one that cannot (invalid profile or labels, outside the ingestion
// window, not authorised) is permanent and wraps errRejected.
func (p *pusher) push(ctx context.Context, msg *pushv1.PushRequest) error {
	req := connect.NewRequest(msg)
	if p.tenant != "" {
		req.Header().Set("X-Scope-OrgID", p.tenant)
	}
	switch {
	case p.user != "":
		req.Header().Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.password)))
	case p.bearer != "":
		req.Header().Set("Authorization", "Bearer "+p.bearer)
	}
	_, err := p.client.Push(ctx, req)
	if err == nil {
		return nil
	}
	if retryable(err) {
		return fmt.Errorf("pyroscope push: %w", err)
	}
	return consumererror.NewPermanent(fmt.Errorf("%w: %w", errRejected, err))
}

// retryable decides from Pyroscope's connect error code, or, for an answer
// that was no connect error (a proxy's, say), from its HTTP status: connect
// maps a plain 400 to Internal and a 413 to Unknown, which would otherwise
// read as failures that can pass.
func retryable(err error) bool {
	var ce *connect.Error
	if errors.As(err, &ce) && !connect.IsWireError(err) {
		if status, ok := httpStatus(ce.Message()); ok {
			return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
		}
	}
	return retryableCode(connect.CodeOf(err))
}

// httpStatus reads the status connect puts in the message of an answer
// that was no connect error ("413 Request Entity Too Large").
func httpStatus(msg string) (int, bool) {
	if len(msg) < 3 {
		return 0, false
	}
	n, err := strconv.Atoi(msg[:3])
	if err != nil || n < 100 || n > 599 || (len(msg) > 3 && msg[3] != ' ') {
		return 0, false
	}
	return n, true
}

// retryableCode follows the OTLP exporters' rule for gRPC codes, plus
// Unknown and Internal: Pyroscope answers those when its own write path
// (ingesters, segment writers) fails.
func retryableCode(code connect.Code) bool {
	switch code {
	case connect.CodeCanceled, connect.CodeDeadlineExceeded, connect.CodeAborted, connect.CodeOutOfRange,
		connect.CodeUnavailable, connect.CodeDataLoss, connect.CodeResourceExhausted,
		connect.CodeUnknown, connect.CodeInternal:
		return true
	}
	return false
}
