package framework

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestDefaultFleet checks the labels and taints the policies key on, per node group.
func TestDefaultFleet(t *testing.T) {
	nodes := map[string]*corev1.Node{}
	for _, n := range DefaultFleet().Nodes() {
		nodes[n.Name] = n
	}
	if got, want := len(nodes), 3*(1+2+1+4+2+4); got != want {
		t.Errorf("%d nodes, want %d", got, want)
	}
	tests := map[string]struct {
		node       string
		wantLabels map[string]string // a subset of the node's labels
		wantTaints []corev1.Taint
	}{
		"system node takes other workloads": {
			node:       "system-us-east-1a-1",
			wantLabels: map[string]string{LabelEKSCapacityType: "ON_DEMAND", LabelZone: "us-east-1a", LabelInstanceType: "m5.large"},
		},
		"on-demand Spark node for drivers": {
			node: "spark-ondemand-us-east-1b-2",
			wantLabels: map[string]string{LabelEKSCapacityType: "ON_DEMAND", LabelKarpenterCapacityType: "on-demand",
				LabelNodeRole: "spark", LabelZone: "us-east-1b", LabelEKSNodeGroup: GroupOnDemand},
			wantTaints: []corev1.Taint{SparkTaint},
		},
		"spot NVMe node": {
			node: "spark-spot-nvme-us-east-1c-2",
			wantLabels: map[string]string{LabelEKSCapacityType: "SPOT", LabelKarpenterCapacityType: "spot",
				LabelNodeRole: "spark", LabelDisk: "nvme", LabelInstanceType: "r5d.4xlarge"},
			wantTaints: []corev1.Taint{SparkTaint, SpotTaint},
		},
		"Fargate virtual node, tainted as EKS does": {
			node:       "fargate-us-east-1a-4",
			wantLabels: map[string]string{LabelComputeType: "fargate", LabelZone: "us-east-1a", LabelRegion: "us-east-1"},
			wantTaints: []corev1.Taint{FargateTaint},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, ok := nodes[tc.node]
			if !ok {
				t.Fatalf("no node %s", tc.node)
			}
			got := map[string]string{}
			for k := range tc.wantLabels {
				if v, ok := n.Labels[k]; ok {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tc.wantLabels, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTaints, n.Spec.Taints); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
			if n.Annotations[KwokNodeAnnotation] != "fake" {
				t.Errorf("node not managed by kwok: %v", n.Annotations)
			}
		})
	}
}
