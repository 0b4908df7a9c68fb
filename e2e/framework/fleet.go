package framework

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node labels, annotations and taints of an EKS cluster that the policies key on.
const (
	// KwokNodeAnnotation marks the nodes kwok manages (its --manage-nodes-with-annotation-selector).
	KwokNodeAnnotation = "kwok.x-k8s.io/node"

	LabelZone                  = "topology.kubernetes.io/zone"
	LabelZoneID                = "topology.k8s.aws/zone-id"
	LabelRegion                = "topology.kubernetes.io/region"
	LabelInstanceType          = "node.kubernetes.io/instance-type"
	LabelHostname              = "kubernetes.io/hostname"
	LabelEKSCapacityType       = "eks.amazonaws.com/capacityType"
	LabelKarpenterCapacityType = "karpenter.sh/capacity-type"
	LabelEKSNodeGroup          = "eks.amazonaws.com/nodegroup"
	LabelComputeType           = "eks.amazonaws.com/compute-type"
	LabelNodeRole              = "noderole"
	LabelDisk                  = "disk"

	// TaintNotReady is the taint the node lifecycle controller keeps on a node until it reports Ready.
	TaintNotReady = "node.kubernetes.io/not-ready"
)

// NodeGroup is a set of identical nodes, Count of them in every zone of the Fleet.
type NodeGroup struct {
	// Name prefixes the node names (<Name>-<zone>-<n>) and is the eks.amazonaws.com/nodegroup label of EC2 groups.
	Name  string
	Count int
	// InstanceType is the node.kubernetes.io/instance-type label; empty for Fargate.
	InstanceType string
	// CPU, Memory and Pods are the node's allocatable resources (capacity is the same).
	CPU, Memory, Pods string
	// Labels are added to the well-known ones (zone, region, hostname, os, arch, instance type, node group).
	Labels map[string]string
	Taints []corev1.Taint
	// Fargate makes virtual Fargate nodes: no node group or instance-type label, as EKS registers them.
	Fargate bool
}

// Fleet is an EKS-like node fleet: every NodeGroup in every zone.
type Fleet struct {
	Region string
	Zones  []string
	Groups []NodeGroup
	// ZoneIDs, when set, label each zone's nodes with its AWS zone id (topology.k8s.aws/zone-id, e.g.
	// use1-az4), as EKS does.
	ZoneIDs map[string]string
	// Unzoned leaves out the zone and region labels, as on bare metal or kubeadm clusters; Zones then only
	// name the sets of nodes.
	Unzoned bool
}

var (
	// SparkTaint isolates Spark nodes from other workloads (the workload-isolation rule tolerates it).
	SparkTaint = corev1.Taint{Key: LabelNodeRole, Value: "spark", Effect: corev1.TaintEffectNoSchedule}
	// SpotTaint keeps pods that did not ask for spot capacity off spot nodes.
	SpotTaint = corev1.Taint{Key: "spot", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	// FargateTaint is the taint EKS puts on Fargate virtual nodes.
	FargateTaint = corev1.Taint{Key: LabelComputeType, Value: "fargate", Effect: corev1.TaintEffectNoSchedule}
)

// Node group names of DefaultFleet.
const (
	GroupSystem       = "system"
	GroupOnDemand     = "spark-ondemand"
	GroupOnDemandNVMe = "spark-ondemand-nvme"
	GroupSpot         = "spark-spot"
	GroupSpotNVMe     = "spark-spot-nvme"
	GroupFargate      = "fargate"
)

// DefaultFleet is a small EKS cluster in us-east-1 over three zones, per zone: one untainted system node for
// other workloads, on-demand Spark nodes for drivers (plain and NVMe, for drivers of NVMe jobs), tainted spot
// Spark nodes for executors, spot NVMe nodes (disk=nvme, instance store) and Fargate virtual nodes (one pod each, as on EKS). Allocatable values are those
// EKS reports for the instance types.
func DefaultFleet() Fleet {
	onDemand := map[string]string{LabelEKSCapacityType: "ON_DEMAND", LabelKarpenterCapacityType: "on-demand"}
	spot := map[string]string{LabelEKSCapacityType: "SPOT", LabelKarpenterCapacityType: "spot"}
	spark := map[string]string{LabelNodeRole: "spark"}
	return Fleet{
		Region: "us-east-1",
		Zones:  []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		Groups: []NodeGroup{
			{Name: GroupSystem, Count: 1, InstanceType: "m5.large", CPU: "1930m", Memory: "7134Mi", Pods: "29",
				Labels: onDemand},
			{Name: GroupOnDemand, Count: 2, InstanceType: "m5.2xlarge", CPU: "7910m", Memory: "30310Mi", Pods: "58",
				Labels: merge(onDemand, spark), Taints: []corev1.Taint{SparkTaint}},
			{Name: GroupOnDemandNVMe, Count: 1, InstanceType: "m5d.2xlarge", CPU: "7910m", Memory: "30310Mi", Pods: "58",
				Labels: merge(onDemand, spark, map[string]string{LabelDisk: "nvme"}), Taints: []corev1.Taint{SparkTaint}},
			{Name: GroupSpot, Count: 4, InstanceType: "m5.4xlarge", CPU: "15890m", Memory: "59843Mi", Pods: "234",
				Labels: merge(spot, spark), Taints: []corev1.Taint{SparkTaint, SpotTaint}},
			{Name: GroupSpotNVMe, Count: 2, InstanceType: "r5d.4xlarge", CPU: "15890m", Memory: "124880Mi", Pods: "234",
				Labels: merge(spot, spark, map[string]string{LabelDisk: "nvme"}), Taints: []corev1.Taint{SparkTaint, SpotTaint}},
			{Name: GroupFargate, Count: 4, CPU: "4", Memory: "30Gi", Pods: "1", Fargate: true,
				Labels: map[string]string{LabelComputeType: "fargate"}, Taints: []corev1.Taint{FargateTaint}},
		},
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// Nodes returns the Node objects of the fleet, zone by zone, group by group.
func (f Fleet) Nodes() []*corev1.Node {
	var nodes []*corev1.Node
	for _, zone := range f.Zones {
		for _, g := range f.Groups {
			for i := 1; i <= g.Count; i++ {
				nodes = append(nodes, f.node(g, zone, i))
			}
		}
	}
	return nodes
}

func (f Fleet) node(g NodeGroup, zone string, i int) *corev1.Node {
	name := fmt.Sprintf("%s-%s-%d", g.Name, zone, i)
	labels := merge(g.Labels, map[string]string{
		LabelHostname: name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
	})
	if !f.Unzoned {
		labels[LabelZone], labels[LabelRegion] = zone, f.Region
		// The legacy zone label, still set by EKS and read by old tooling.
		labels["failure-domain.beta.kubernetes.io/zone"] = zone
	}
	if id := f.ZoneIDs[zone]; id != "" {
		labels[LabelZoneID] = id
	}
	if !g.Fargate {
		labels[LabelInstanceType] = g.InstanceType
		labels[LabelEKSNodeGroup] = g.Name
	}
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(g.CPU),
		corev1.ResourceMemory: resource.MustParse(g.Memory),
		corev1.ResourcePods:   resource.MustParse(g.Pods),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      labels,
			Annotations: map[string]string{KwokNodeAnnotation: "fake"},
		},
		Spec: corev1.NodeSpec{Taints: append([]corev1.Taint(nil), g.Taints...)},
		Status: corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources.DeepCopy(),
			Phase:       corev1.NodeRunning,
		},
	}
}

// CreateFleet creates the fleet's nodes (an existing node of the same name is kept) and waits until kwok has
// made every one Ready and the node lifecycle controller has lifted the not-ready taint, so that pods can
// schedule onto them.
func (cp *ControlPlane) CreateFleet(ctx context.Context, f Fleet) error {
	start := time.Now()
	nodes := f.Nodes()
	for _, n := range nodes {
		if _, err := cp.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
	}
	pending := map[string]bool{}
	for _, n := range nodes {
		pending[n.Name] = true
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := cp.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		for i := range list.Items {
			if NodeSchedulable(&list.Items[i]) {
				delete(pending, list.Items[i].Name)
			}
		}
		if len(pending) == 0 {
			cp.opts.Logf("%d nodes ready in %s", len(nodes), time.Since(start).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d nodes not ready: %w", len(pending), len(nodes), ctx.Err())
		case <-tick.C:
		}
	}
}

// DeleteFleet deletes the fleet's nodes (those already gone are fine).
func (cp *ControlPlane) DeleteFleet(ctx context.Context, f Fleet) error {
	for _, n := range f.Nodes() {
		if err := cp.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete node %s: %w", n.Name, err)
		}
	}
	return nil
}

// NodeSchedulable reports whether a node is Ready and no longer carries the not-ready taint.
func NodeSchedulable(n *corev1.Node) bool {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Key == TaintNotReady {
			return false
		}
	}
	return ready
}
