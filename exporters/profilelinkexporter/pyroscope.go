package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// job is one profile ready for Pyroscope's ingest API.
type job struct {
	Name  string `json:"name"`  // application{label=value,...}
	From  int64  `json:"from"`  // Unix ns
	Until int64  `json:"until"` // Unix ns
	pprof []byte // gzipped pprof
}

// errRejected marks a profile Pyroscope will never accept (4xx).
var errRejected = errors.New("rejected by Pyroscope")

// pusher sends jobs to Pyroscope's /ingest, as pyroscope-go does: a
// multipart form with the pprof in its "profile" part.
type pusher struct {
	client   *http.Client
	endpoint string
	tenant   string
	user     string
	password string
	bearer   string
}

func (p *pusher) push(ctx context.Context, j *job) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		return err
	}
	_, _ = fw.Write(j.pprof)
	if err := mw.Close(); err != nil {
		return err
	}
	q := url.Values{}
	q.Set("name", j.Name)
	q.Set("from", strconv.FormatInt(j.From, 10))
	q.Set("until", strconv.FormatInt(j.Until, 10))
	q.Set("format", "pprof")
	q.Set("spyName", "otelcol-fabric")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(p.endpoint, "/")+"/ingest?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if p.tenant != "" {
		req.Header.Set("X-Scope-OrgID", p.tenant)
	}
	switch {
	case p.user != "":
		req.SetBasicAuth(p.user, p.password)
	case p.bearer != "":
		req.Header.Set("Authorization", "Bearer "+p.bearer)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err // retryable: Pyroscope unreachable
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("pyroscope: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	default:
		return fmt.Errorf("%w: %s: %s", errRejected, resp.Status, strings.TrimSpace(string(msg)))
	}
}

// spool keeps jobs on disk, in order, while Pyroscope is unreachable: one
// file per job, named by a sequence number; the header line is the job's
// JSON, the rest its pprof. It is bounded in bytes: the oldest files make
// room for new ones.
type spool struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	size     int64
	seq      uint64
	files    []spoolFile // oldest first
}

type spoolFile struct {
	name string
	size int64
}

func openSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool::directory: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool::directory: %w", err)
	}
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".ingest")
		seq, err := strconv.ParseUint(n, 10, 64)
		if !ok || err != nil || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.files = append(s.files, spoolFile{e.Name(), info.Size()})
		s.size += info.Size()
		s.seq = max(s.seq, seq)
	}
	sort.Slice(s.files, func(i, j int) bool { return s.files[i].name < s.files[j].name })
	return s, nil
}

func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files) == 0
}

// write appends a job; it returns how many older jobs were dropped for room.
func (s *spool) write(j *job) (dropped int, err error) {
	header, err := json.Marshal(j)
	if err != nil {
		return 0, err
	}
	size := int64(len(header) + 1 + len(j.pprof))
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.size+size > s.maxBytes && len(s.files) > 0 {
		old := s.files[0]
		_ = os.Remove(filepath.Join(s.dir, old.name))
		s.files = s.files[1:]
		s.size -= old.size
		dropped++
	}
	if size > s.maxBytes {
		return dropped + 1, nil // larger than the whole spool
	}
	s.seq++
	name := fmt.Sprintf("%020d.ingest", s.seq)
	tmp := filepath.Join(s.dir, name+".tmp")
	data := append(append(header, '\n'), j.pprof...)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return dropped, err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return dropped, err
	}
	s.files = append(s.files, spoolFile{name, size})
	s.size += size
	return dropped, nil
}

// oldest reads the oldest job.
func (s *spool) oldest() (*job, string, error) {
	s.mu.Lock()
	if len(s.files) == 0 {
		s.mu.Unlock()
		return nil, "", nil
	}
	name := s.files[0].name
	s.mu.Unlock()
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, name, err
	}
	r := bufio.NewReader(bytes.NewReader(data))
	header, err := r.ReadBytes('\n')
	if err != nil {
		return nil, name, fmt.Errorf("spool file %s: no header", name)
	}
	var j job
	if err := json.Unmarshal(header, &j); err != nil {
		return nil, name, fmt.Errorf("spool file %s: %w", name, err)
	}
	j.pprof = data[len(header):]
	return &j, name, nil
}

// remove deletes a delivered (or undeliverable) job.
func (s *spool) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.files {
		if f.name == name {
			_ = os.Remove(filepath.Join(s.dir, name))
			s.size -= f.size
			s.files = append(s.files[:i], s.files[i+1:]...)
			return
		}
	}
}
