package queuewatchextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension"

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Status is the JSON document served at /status.
type Status struct {
	Level      string        `json:"level"`
	LevelSince time.Time     `json:"level_since"`
	MaxFill    float64       `json:"max_fill"`
	Levels     Levels        `json:"levels"`
	Queues     []QueueStatus `json:"queues"`
	SLO        SLOStatus     `json:"slo"`
	Shedding   []ShedStatus  `json:"shedding"`
	History    []sample      `json:"history"`
}

// QueueStatus is one watched exporter.
type QueueStatus struct {
	Exporter  string  `json:"exporter"`
	Fill      float64 `json:"fill"`
	Reporting bool    `json:"reporting"`
}

// SLOStatus is the queue-length objective over its window.
type SLOStatus struct {
	FillTarget float64 `json:"fill_target"`
	Objective  float64 `json:"objective"`
	Window     string  `json:"window"`
	Compliance float64 `json:"compliance"`
	Met        bool    `json:"met"`
}

// ShedStatus is what processors shed or refused for one tier, signal and reason.
type ShedStatus struct {
	Tier      string  `json:"tier"`
	Signal    string  `json:"signal"`
	Reason    string  `json:"reason"`
	Total     int64   `json:"total"`
	PerSecond float64 `json:"per_second"`
}

func (w *watcher) status(now time.Time) Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{
		Level:      w.machine.level.String(),
		LevelSince: w.machine.since,
		MaxFill:    w.last.Max,
		Levels:     w.cfg.Levels,
	}
	for _, e := range w.cfg.Exporters {
		st.Queues = append(st.Queues, QueueStatus{Exporter: e, Fill: w.last.Fill[e], Reporting: w.measured && !w.missing[e]})
	}
	c := w.ring.compliance(w.cfg.SLO.Window, w.cfg.SLO.Target, now)
	st.SLO = SLOStatus{FillTarget: w.cfg.SLO.Target, Objective: w.cfg.SLO.Objective, Window: w.cfg.SLO.Window.String(),
		Compliance: c, Met: c >= w.cfg.SLO.Objective}
	for k, n := range w.shed {
		st.Shedding = append(st.Shedding, ShedStatus{Tier: k.tier, Signal: k.signal, Reason: k.reason, Total: n, PerSecond: w.shedRate[k]})
	}
	sort.Slice(st.Shedding, func(i, j int) bool {
		a, b := st.Shedding[i], st.Shedding[j]
		return a.Tier+a.Signal+a.Reason < b.Tier+b.Signal+b.Reason
	})
	st.History = append([]sample(nil), w.ring.since(w.cfg.History, now)...)
	return st
}

func (w *watcher) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(rw).Encode(w.status(time.Now()))
	})
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		rw.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
		if err := page.Execute(rw, newPageData(w.status(time.Now()), w.cfg.History)); err != nil {
			w.logger.Debug("queuewatch: rendering the status page failed")
		}
	})
	return mux
}

// chart geometry of the status page, in SVG user units.
const chartW, chartH = 600.0, 120.0

type pageData struct {
	Status
	Charts  []chart
	Minutes string
}

type chart struct {
	Exporter  string
	Fill      string
	Reporting bool
	Points    string // SVG polyline points
	Lines     []threshold
}

type threshold struct {
	Name string
	Y    float64
}

func newPageData(st Status, history time.Duration) pageData {
	d := pageData{Status: st, Minutes: fmt.Sprintf("%.0f", history.Minutes())}
	var end time.Time
	if n := len(st.History); n > 0 {
		end = st.History[n-1].At
	}
	for _, q := range st.Queues {
		c := chart{Exporter: q.Exporter, Fill: fmt.Sprintf("%.0f%%", q.Fill*100), Reporting: q.Reporting}
		var pts []string
		for _, s := range st.History {
			f, ok := s.Fill[q.Exporter]
			if !ok {
				continue
			}
			x := chartW - end.Sub(s.At).Seconds()/history.Seconds()*chartW
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, chartH-f*chartH))
		}
		c.Points = strings.Join(pts, " ")
		for _, t := range []struct {
			name string
			v    float64
		}{{"elevated", st.Levels.Elevated}, {"high", st.Levels.High}, {"critical", st.Levels.Critical}} {
			c.Lines = append(c.Lines, threshold{t.name, chartH - t.v*chartH})
		}
		d.Charts = append(d.Charts, c)
	}
	return d
}

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"mul100": func(v float64) float64 { return v * 100 },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>otelcol-fabric queue watch: {{.Level}}</title>
<meta http-equiv="refresh" content="2">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
.level{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:bold;color:#fff}
.ok{background:#2e7d32}.elevated{background:#f9a825}.high{background:#ef6c00}.critical{background:#c62828}
svg{background:#fafafa;border:1px solid #ddd} polyline{fill:none;stroke:#1565c0;stroke-width:2}
line.elevated{stroke:#f9a825}line.high{stroke:#ef6c00}line.critical{stroke:#c62828}
line{stroke-dasharray:4 3} table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left}
</style></head>
<body>
<h1>Queue watch</h1>
<p>Pressure level: <span id="level" class="level {{.Level}}">{{.Level}}</span> since {{.LevelSince.Format "15:04:05"}};
fullest queue {{printf "%.0f" (mul100 .MaxFill)}}%.</p>
<p id="slo">SLO: queue fill below {{printf "%.0f" (mul100 .SLO.FillTarget)}}% for {{printf "%.1f" (mul100 .SLO.Objective)}}% of {{.SLO.Window}}:
{{printf "%.2f" (mul100 .SLO.Compliance)}}% {{if .SLO.Met}}(met){{else}}(missed){{end}}.</p>
<h2>Queues, last {{.Minutes}} minutes</h2>
{{range .Charts}}<figure class="queue" data-exporter="{{.Exporter}}">
<figcaption>{{.Exporter}}: {{.Fill}} full{{if not .Reporting}} (not reporting){{end}}</figcaption>
<svg viewBox="0 0 600 120" width="600" height="120" role="img" aria-label="fill of {{.Exporter}}">
{{range .Lines}}<line class="{{.Name}}" x1="0" x2="600" y1="{{.Y}}" y2="{{.Y}}"/>{{end}}
<polyline points="{{.Points}}"/>
</svg></figure>
{{end}}
<h2>Shedding</h2>
{{if .Shedding}}<table id="shedding"><tr><th>tier</th><th>signal</th><th>reason</th><th>items</th><th>per second</th></tr>
{{range .Shedding}}<tr><td>{{.Tier}}</td><td>{{.Signal}}</td><td>{{.Reason}}</td><td>{{.Total}}</td><td>{{printf "%.1f" .PerSecond}}</td></tr>
{{end}}</table>{{else}}<p id="shedding">Nothing shed.</p>{{end}}
<p><a href="status">JSON</a></p>
</body></html>
`))
