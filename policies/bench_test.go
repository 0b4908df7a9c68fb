package policies

import (
	"context"
	"testing"
)

// benchInput is a reduced Spark 3.5 executor as the webhook builds it: labels, security context, the
// local-dir volume and its mount.
func benchInput() *Input {
	in := makeInput("executor").profile("nvme").driverZone("us-east-1a").localDirs().runAs(185, 185).obj()
	in.Pod.Labels["spark-exec-resourceprofile-id"] = "0"
	return in
}

// BenchmarkDecideCacheHit is every executor of an application after the first.
func BenchmarkDecideCacheHit(b *testing.B) {
	e := newEngine(b, Options{})
	ctx := context.Background()
	in := benchInput()
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideCacheMiss is a full evaluation of the bundle (a pod whose decision key the cache does not
// hold): by the bundle's plan (plan.go), and by OPA's evaluator alone (topdown), which evaluates bundles the
// plan cannot run and every evaluation the plan leaves to it.
func BenchmarkDecideCacheMiss(b *testing.B) {
	for _, bc := range []struct {
		name    string
		topdown bool
	}{{"plan", false}, {"topdown", true}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, Options{CacheSize: -1})
			if bc.topdown {
				v := *e.Current()
				v.plan = nil
				e.current.Store(&v)
			}
			ctx := context.Background()
			in := benchInput()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideCacheHitParallel checks that the cache's lock does not serialise concurrent admissions badly.
func BenchmarkDecideCacheHitParallel(b *testing.B) {
	e := newEngine(b, Options{})
	ctx := context.Background()
	in := benchInput()
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Decide(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
