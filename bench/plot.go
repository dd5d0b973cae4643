package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

func savePlot(p *plot.Plot, dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	return path, p.Save(7*vg.Inch, 4.2*vg.Inch, path)
}

// plotThroughput: acknowledged and delivered spans/s against offered, per
// config, from the step search; sustainable runs filled, others hollow.
func plotThroughput(steps []*stepState, dir string) (string, error) {
	p := plot.New()
	p.Title.Text = "Throughput vs offered load (step search)"
	p.X.Label.Text = "offered spans/s"
	p.Y.Label.Text = "delivered spans/s (send window)"
	p.Legend.Top, p.Legend.Left = true, true
	maxX := 0.0
	for i, s := range steps {
		var good, bad plotter.XYs
		for _, r := range s.Steps {
			if r.Contended || r.Load.Elapsed == 0 {
				continue // its rerun is plotted
			}
			d := float64(r.V.Delivered) / r.Load.Elapsed.Seconds()
			maxX = max(maxX, r.Offered)
			if r.Sustainable {
				good = append(good, plotter.XY{X: r.Offered, Y: d})
			} else {
				bad = append(bad, plotter.XY{X: r.Offered, Y: d})
			}
		}
		c := plotutil.Color(i)
		if len(good) > 0 {
			sc, err := plotter.NewScatter(good)
			if err != nil {
				return "", err
			}
			sc.Color, sc.Shape = c, draw.CircleGlyph{}
			sc.Radius = vg.Points(4)
			p.Add(sc)
			p.Legend.Add(s.Cfg.Name+" (sustainable)", sc)
		}
		if len(bad) > 0 {
			sc, err := plotter.NewScatter(bad)
			if err != nil {
				return "", err
			}
			sc.Color, sc.Shape = c, draw.RingGlyph{}
			sc.Radius = vg.Points(4)
			p.Add(sc)
			p.Legend.Add(s.Cfg.Name+" (not)", sc)
		}
	}
	diag, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: maxX, Y: maxX}})
	diag.Color = color.Gray{Y: 160}
	diag.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(diag)
	return savePlot(p, dir, "throughput-vs-offered.svg")
}

// plotCPUPerSpan: median collector CPU per acknowledged span at the same
// offered rate, per config.
func plotCPUPerSpan(names []string, micros []float64, rate float64, dir string) (string, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Collector CPU per span at %.0f spans/s (median of rounds)", rate)
	p.Y.Label.Text = "CPU µs per span"
	vals := plotter.Values(micros)
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return "", err
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	return savePlot(p, dir, "cpu-per-span.svg")
}

// plotRSS: the collector's RSS over each run of the first comparison round.
func plotRSS(runs []runResult, dir string) (string, error) {
	p := plot.New()
	p.Title.Text = "Collector RSS over a run (first comparison round)"
	p.X.Label.Text = "seconds since the collector was healthy"
	p.Y.Label.Text = "RSS MiB"
	p.Legend.Top, p.Legend.Left = true, true
	i := 0
	for _, r := range runs {
		if r.Round != 0 {
			continue
		}
		var xy plotter.XYs
		for _, s := range r.RSSSeries {
			xy = append(xy, plotter.XY{X: s.At.Seconds(), Y: float64(s.RSS) / (1 << 20)})
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return "", err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		p.Add(l)
		p.Legend.Add(r.Config, l)
		i++
	}
	return savePlot(p, dir, "rss-over-time.svg")
}
