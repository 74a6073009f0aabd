package bench

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot files written by WritePlots (each as .png and .svg).
const (
	PlotStages     = "latency_per_stage"
	PlotLogN       = "latency_vs_logn"
	PlotProving    = "proving_time_vs_batch"
	PlotThroughput = "throughput_vs_clients"
	PlotPeer       = "peer_seal_vs_veil"
)

// errPoints are points with asymmetric Y errors (median with the p95 above).
type errPoints struct {
	plotter.XYs
	lo, hi []float64
}

func (e errPoints) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

// WritePlots draws the result's plots as PNG and SVG into dir. A plot
// whose data the result lacks (a skipped stage) is not drawn.
func WritePlots(dir string, r *Result) ([]string, error) {
	var files []string
	subtitle := fmt.Sprintf("%s, %d cores, load %s; %s", r.Environment.CPUModel, r.Environment.Cores, fmtLoad(r.Environment.LoadAvgStart), shortCommit(r.Environment.GitCommit))
	for _, mk := range []struct {
		name string
		f    func(*Result) (*plot.Plot, error)
	}{
		{PlotStages, plotStages},
		{PlotLogN, plotLogN},
		{PlotProving, plotProving},
		{PlotThroughput, plotThroughput},
		{PlotPeer, plotPeer},
	} {
		p, err := mk.f(r)
		if err != nil {
			return files, fmt.Errorf("plot %s: %w", mk.name, err)
		}
		if p == nil {
			continue
		}
		p.Title.Text += "\n" + subtitle
		p.Title.TextStyle.Font.Size = vg.Points(10)
		p.Legend.TextStyle.Font.Size = vg.Points(9)
		for _, ext := range []string{".png", ".svg"} {
			path := filepath.Join(dir, mk.name+ext)
			if err := p.Save(18*vg.Centimeter, 11*vg.Centimeter, path); err != nil {
				return files, fmt.Errorf("plot %s: %w", path, err)
			}
			files = append(files, path)
		}
	}
	return files, nil
}

func fmtLoad(l []float64) string {
	if len(l) == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", l[0])
}

func shortCommit(c string) string {
	if len(c) > 10 {
		return c[:10]
	}
	return c
}

// plotStages: median time of each evaluation stage, plus client
// encryption and decryption, one bar per (LogN, hidden) at the suite's
// fullest packing and the default workers.
func plotStages(r *Result) (*plot.Plot, error) {
	s := r.Suite.HE
	if len(s.Images) == 0 || len(s.Workers) == 0 {
		return nil, nil
	}
	img := maxInt(s.Images)
	w := maxInt(s.Workers)
	names := append(append([]string{"encrypt"}, EvaluationStageNames()...), "decrypt")
	labels := make([]string, len(names))
	for i, n := range names {
		labels[i] = strings.TrimPrefix(n, "evaluate/")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latency per stage (median, %d images per ciphertext, %d workers)", img, w)
	p.Y.Label.Text = "ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var bars []*plotter.BarChart
	for _, logN := range s.LogN {
		for _, h := range s.Hidden {
			pp := Params{LogN: logN, Hidden: h, Images: img, Workers: w, Model: s.modelName(h)}
			vals := make(plotter.Values, len(names))
			ok := false
			for i, n := range names {
				l, found := r.LatencyOf(StageHE, n, pp)
				vals[i] = 1e-3
				if found {
					vals[i] = max(l.Median, 1e-3)
					ok = true
				}
			}
			if !ok {
				continue
			}
			b, err := plotter.NewBarChart(vals, vg.Points(5))
			if err != nil {
				return nil, err
			}
			b.Color = plotutil.Color(len(bars))
			b.LineStyle.Width = 0
			p.Legend.Add(fmt.Sprintf("LogN %d, hidden %d", logN, h), b)
			bars = append(bars, b)
		}
	}
	if len(bars) == 0 {
		return nil, nil
	}
	logBars(p, bars, vg.Points(5))
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = draw.XRight
	p.Legend.Top = true
	return p, nil
}

// plotLogN: evaluation time against LogN, one line per (hidden, workers),
// with the p95 as an error bar above each median.
func plotLogN(r *Result) (*plot.Plot, error) {
	s := r.Suite.HE
	if len(s.Images) == 0 {
		return nil, nil
	}
	img := maxInt(s.Images)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Encrypted evaluation vs ring degree (median, bar to p95; %d images per ciphertext)", img)
	p.X.Label.Text = "log2 N"
	p.Y.Label.Text = "evaluate, ms"
	p.Y.Min = 0
	k := 0
	for _, h := range s.Hidden {
		for _, w := range s.Workers {
			var pts errPoints
			for _, logN := range s.LogN {
				l, ok := r.LatencyOf(StageHE, "evaluate", Params{LogN: logN, Hidden: h, Images: img, Workers: w, Model: s.modelName(h)})
				if !ok {
					continue
				}
				pts.XYs = append(pts.XYs, plotter.XY{X: float64(logN), Y: l.Median})
				pts.lo = append(pts.lo, 0)
				pts.hi = append(pts.hi, l.P95-l.Median)
			}
			if len(pts.XYs) == 0 {
				continue
			}
			if err := addSeries(p, fmt.Sprintf("hidden %d, %d worker(s)", h, w), pts, k); err != nil {
				return nil, err
			}
			k++
		}
	}
	if k == 0 {
		return nil, nil
	}
	p.X.Tick.Marker = intTicks(s.LogN)
	padX(p, s.LogN)
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// plotProving: Groth16 proving time against batch size.
func plotProving(r *Result) (*plot.Plot, error) {
	var pts errPoints
	var ver errPoints
	for _, b := range r.Suite.ZK.Batches {
		pp := Params{Batch: b, Model: r.Suite.ZK.Model}
		if l, ok := r.LatencyOf(StageZK, "prove", pp); ok {
			pts.XYs = append(pts.XYs, plotter.XY{X: float64(b), Y: l.Median / 1000})
			pts.lo = append(pts.lo, 0)
			pts.hi = append(pts.hi, (l.P95-l.Median)/1000)
		}
		if l, ok := r.LatencyOf(StageZK, "verify", pp); ok {
			ver.XYs = append(ver.XYs, plotter.XY{X: float64(b), Y: l.Median / 1000})
			ver.lo = append(ver.lo, 0)
			ver.hi = append(ver.hi, (l.P95-l.Median)/1000)
		}
	}
	if len(pts.XYs) == 0 {
		return nil, nil
	}
	slices.SortFunc(pts.XYs, func(a, b plotter.XY) int { return int(a.X - b.X) })
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Groth16 (BN254) proving time vs batch size, model %s (median, bar to p95)", r.Suite.ZK.Model)
	p.X.Label.Text = "challenge images per proof"
	p.Y.Label.Text = "seconds"
	p.Y.Min = 0
	if err := addSeries(p, "prove", pts, 0); err != nil {
		return nil, err
	}
	if len(ver.XYs) > 0 {
		// Verification takes milliseconds: listed, not drawn.
		var vs []string
		for _, v := range ver.XYs {
			vs = append(vs, fmt.Sprintf("%.1f ms", v.Y*1000))
		}
		p.Legend.Add("verify (median): " + strings.Join(vs, ", "))
	}
	p.X.Tick.Marker = intTicks(r.Suite.ZK.Batches)
	padX(p, r.Suite.ZK.Batches)
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// plotThroughput: images per second through the gRPC service against the
// number of concurrent clients.
func plotThroughput(r *Result) (*plot.Plot, error) {
	var pts errPoints
	var clients []int
	for _, t := range r.Throughput {
		if t.Stage != StageGRPC {
			continue
		}
		pts.XYs = append(pts.XYs, plotter.XY{X: float64(t.Params.Clients), Y: t.ImagesPerSecond})
		pts.lo = append(pts.lo, 0)
		pts.hi = append(pts.hi, 0)
		clients = append(clients, t.Params.Clients)
	}
	if len(pts.XYs) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Encrypted inference throughput over gRPC (loopback, 8 images per ciphertext)"
	p.X.Label.Text = "concurrent clients"
	p.Y.Label.Text = "images per second"
	p.Y.Min = 0
	l, sc, err := plotter.NewLinePoints(pts.XYs)
	if err != nil {
		return nil, err
	}
	l.Color, sc.Color = plotutil.Color(0), plotutil.Color(0)
	p.Add(l, sc)
	p.Legend.Add("images/s", l, sc)
	for _, xy := range pts.XYs {
		p.Y.Max = math.Max(p.Y.Max, 1.35*xy.Y)
	}
	// The p95 latency of each level, on the same x, as a second series in
	// the legend's text.
	var lat []string
	for _, t := range r.Throughput {
		if t.Stage == StageGRPC {
			lat = append(lat, fmt.Sprintf("%d: %.0f ms", t.Params.Clients, t.Latency.P95))
		}
	}
	p.Legend.Add("p95 latency " + strings.Join(lat, ", "))
	p.X.Tick.Marker = intTicks(clients)
	padX(p, clients)
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// plotPeer: SEAL's stage medians next to Veil's (1 and the largest number
// of workers) at the default parameters.
func plotPeer(r *Result) (*plot.Plot, error) {
	pr := r.Peer
	if pr == nil || pr.Status != StatusOK {
		return nil, nil
	}
	names := append(append([]string{"keygen", "encrypt"}, EvaluationStageNames()...), "evaluate", "decrypt")
	labels := make([]string, len(names))
	for i, n := range names {
		labels[i] = strings.TrimPrefix(n, "evaluate/")
	}
	peer := map[string]float64{}
	for _, l := range pr.Latencies {
		peer[l.Name] = l.Median
	}
	type series struct {
		label string
		vals  plotter.Values
	}
	var ss []series
	sv := make(plotter.Values, len(names))
	for i, n := range names {
		sv[i] = max(peer[n], 1e-3)
	}
	ss = append(ss, series{"SEAL (node-seal, 1 thread)", sv})
	img := 1
	for _, i := range r.Suite.HE.Images {
		if i == pr.Parameters.Blocks {
			img = i
		}
	}
	for _, w := range r.Suite.HE.Workers {
		vp := Params{LogN: pr.Parameters.LogN, Hidden: DefaultHidden, Images: img, Workers: w, Model: "default"}
		vals := make(plotter.Values, len(names))
		for i, n := range names {
			q := vp
			if n == "keygen" {
				q = Params{LogN: vp.LogN, Hidden: vp.Hidden, Model: vp.Model}
			}
			vals[i] = 1e-3
			if l, ok := r.LatencyOf(StageHE, n, q); ok {
				vals[i] = max(l.Median, 1e-3)
			}
		}
		ss = append(ss, series{fmt.Sprintf("Veil (Lattigo, %d worker(s))", w), vals})
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Same network, LogN %d: Microsoft SEAL vs Veil (median)", pr.Parameters.LogN)
	p.Y.Label.Text = "ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var bars []*plotter.BarChart
	for i, s := range ss {
		b, err := plotter.NewBarChart(s.vals, vg.Points(6))
		if err != nil {
			return nil, err
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		p.Legend.Add(s.label, b)
		bars = append(bars, b)
	}
	logBars(p, bars, vg.Points(6))
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = draw.XRight
	p.Legend.Top = true
	return p, nil
}

// logBars adds grouped bar charts to a plot with a logarithmic Y axis.
// gonum's bars start at 0, which a log scale cannot draw: each bar is
// stacked on an undrawn base at a floor below every value, its own height
// reduced by the floor, so that it spans [floor, value] exactly.
func logBars(p *plot.Plot, bars []*plotter.BarChart, width vg.Length) {
	low := math.Inf(1)
	for _, b := range bars {
		for _, v := range b.Values {
			low = math.Min(low, v)
		}
	}
	f := low / 4
	for i, b := range bars {
		base := &plotter.BarChart{Values: make(plotter.Values, len(b.Values)), Width: b.Width}
		for k := range base.Values {
			base.Values[k] = f
			b.Values[k] -= f
		}
		b.StackOn(base)
		b.Offset = width * vg.Length(float64(i)-float64(len(bars)-1)/2)
		p.Add(b)
	}
	p.Y.Min = f
	high := 0.0
	for _, b := range bars {
		for _, v := range b.Values {
			high = math.Max(high, v+f)
		}
	}
	p.Y.Max = high * 12 // a decade above the tallest bar for the legend
}

func addSeries(p *plot.Plot, label string, pts errPoints, k int) error {
	l, sc, err := plotter.NewLinePoints(pts.XYs)
	if err != nil {
		return err
	}
	c := plotutil.Color(k)
	l.Color, sc.Color = c, c
	sc.Shape = plotutil.Shape(k)
	eb, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return err
	}
	eb.Color = c
	p.Add(l, sc, eb)
	p.Legend.Add(label, l, sc)
	// Room above the highest error bar for the legend.
	for i, xy := range pts.XYs {
		p.Y.Max = math.Max(p.Y.Max, 1.35*(xy.Y+pts.hi[i]))
	}
	return nil
}

// padX leaves half a unit of room around the integer x values.
func padX(p *plot.Plot, vs []int) {
	p.X.Min, p.X.Max = float64(slices.Min(vs))-0.5, float64(slices.Max(vs))+0.5
}

// intTicks puts a tick at each integer value given.
func intTicks(vs []int) plot.Ticker {
	return plot.TickerFunc(func(min, max float64) []plot.Tick {
		var ts []plot.Tick
		for _, v := range vs {
			ts = append(ts, plot.Tick{Value: float64(v), Label: fmt.Sprint(v)})
		}
		return ts
	})
}
