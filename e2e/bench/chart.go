package bench

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// series is one latency distribution of the chart.
type series struct {
	// name is the legend; key picks the color (a Variant, or "burst-" and a DeployMode).
	name, key string
	latencies []time.Duration
}

// One color per variant, the same in both panels; the burst gets its own.
var palette = map[string]color.Color{
	string(Sparkplace): color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	string(SamePatch):  color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	string(NoOp):       color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	string(NoWebhook):  color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	"burst-cluster":    color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	"burst-client":     color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// writeChart draws, side by side, the cumulative distributions of the serial create latencies and of the
// latencies under load (parallel creates, the burst), on a log time axis, into a PNG file.
func writeChart(path string, serial, loaded []series) error {
	left, err := ecdfPlot("One create at a time", serial)
	if err != nil {
		return err
	}
	right, err := ecdfPlot("Creates under load", loaded)
	if err != nil {
		return err
	}
	const width, height = 11 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart: %w", err)
	}
	return f.Close()
}

func ecdfPlot(title string, all []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "pod create latency, ms (log scale)"
	p.Y.Label.Text = "share of creates at or below"
	for _, s := range all {
		if len(s.latencies) > 0 { // a log axis needs values (a panel may have none: a run of some parts only)
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
			break
		}
	}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Left, p.Legend.Top = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Millimeter*2, vg.Millimeter*2
	p.Add(plotter.NewGrid())
	for _, s := range all {
		if len(s.latencies) == 0 {
			continue
		}
		sorted := slices.Clone(s.latencies)
		slices.Sort(sorted)
		pts := make(plotter.XYs, len(sorted))
		for i, d := range sorted {
			pts[i].X = max(ms(d), 0.01)
			pts[i].Y = float64(i+1) / float64(len(sorted))
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		line.Color, line.Width = palette[s.key], vg.Points(1.6)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s (%d)", s.name, len(sorted)), line)
	}
	return p, nil
}
