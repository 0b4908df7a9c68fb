package zonecapacity

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkChoose shows that a driver's zone choice costs the same on 90 nodes as on 5,000 nodes with 1,000
// Spark pods: the index keeps running sums, so a choice reads O(zones) numbers and never walks the cluster.
// Reservations expire at once (TTL 0), so every iteration computes a fresh choice.
//
//	go test ./zonecapacity -run '^$' -bench . -benchmem
func BenchmarkChoose(b *testing.B) {
	for _, size := range []struct{ nodes, pods int }{{90, 100}, {5000, 1000}} {
		x, _ := newIndex()
		bigFleet(x, size.nodes, size.pods)
		req := request("app", 8)
		req.TTL = 0
		x.Choose(req) // the first choice for a pool walks the nodes once
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", size.nodes, size.pods), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c := x.Choose(req); c.Zone == "" {
					b.Fatal("no zone")
				}
			}
		})
	}
}

// BenchmarkPodEvent is the cost of one executor bound to a node (an informer update), at both sizes.
func BenchmarkPodEvent(b *testing.B) {
	for _, size := range []struct{ nodes, pods int }{{90, 100}, {5000, 1000}} {
		x, _ := newIndex()
		bigFleet(x, size.nodes, size.pods)
		x.Choose(request("app", 8))
		pending := executor("moving", 1, "", "4", "8Gi")
		bound := executor("moving", 1, "spot-us-east-1a-0", "4", "8Gi")
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", size.nodes, size.pods), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					x.UpsertPod(bound)
				} else {
					x.UpsertPod(pending)
				}
			}
		})
	}
}

// bigFleet spreads nodes spot nodes over three zones and binds pods executors to them.
func bigFleet(x *Index, nodes, pods int) {
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	types := []string{"m5.4xlarge", "m5a.4xlarge", "m6i.4xlarge"}
	perZone := nodes / len(zones)
	for i := range nodes {
		zone := zones[i%len(zones)]
		x.UpsertNode(spotNode(fmt.Sprintf("spot-%s-%d", zone, i/len(zones)), zone, types[i%len(types)]).Obj())
	}
	for i := range pods {
		zone := zones[i%len(zones)]
		x.UpsertPod(executor(fmt.Sprintf("app-%d", i/8), i, fmt.Sprintf("spot-%s-%d", zone, (i/len(zones))%perZone), "1", "4Gi"))
	}
}

// BenchmarkMemory reports the heap the index holds for 5,000 nodes and 1,000 Spark pods (the objects
// themselves live in the informer caches; the index keeps their labels and taints by reference, and its own
// sums).
//
//	go test ./zonecapacity -run '^$' -bench Memory -benchtime 3x
func BenchmarkMemory(b *testing.B) {
	var indexes []*Index
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		x, _ := newIndex()
		bigFleet(x, 5000, 1000)
		x.Choose(request("app", 8))
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		indexes = append(indexes, x) // kept alive until measured
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc), "heap-bytes")
	}
	runtime.KeepAlive(indexes)
}
