package bench

import (
	"slices"
	"time"
)

// percentile is the q-quantile (0..1) of ds by the nearest-rank method; 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// Spread is the minimum, median and maximum of one figure over the repetitions of a run.
type Spread struct {
	Min, Median, Max float64
	N                int
}

func spreadOf(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Min: s[0], Median: med, Max: s[len(s)-1], N: len(s)}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perSecond is the rate of rounds measured apart, taken together: what they counted (count returns it and the
// time it took) over their summed time, so that a longer round weighs more.
func perSecond[R any](rounds []R, count func(R) (int, time.Duration)) float64 {
	n, took := 0, time.Duration(0)
	for _, r := range rounds {
		c, d := count(r)
		n, took = n+c, took+d
	}
	return float64(n) / took.Seconds()
}
