package e2e

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// TestProfilesPlaceSparkPods runs one small Spark application per profile through the webhook and the
// scheduler and checks where its pods run and what the webhook changed on them.
func TestProfilesPlaceSparkPods(t *testing.T) {
	requireWebhook(t)
	const executors = 3
	tests := map[string]struct {
		podProfile       string            // sparkplace.io/profile on the pods ("" for none)
		namespaceLabels  map[string]string // e.g. a namespace default profile
		wantDriverGroups []string          // node groups the driver may run in
		wantExecGroups   []string
		wantSameZone     bool // executors in their driver's zone
		wantDriverRules  []string
		wantExecRules    []string
		wantNVMe         bool // hostPath local dirs and the chown init container
		wantFargate      bool // Fargate label, no node-bound change
	}{
		"default profile: driver on on-demand, executors on spot in the driver's zone": {
			wantDriverGroups: []string{framework.GroupOnDemand, framework.GroupOnDemandNVMe},
			wantExecGroups:   []string{framework.GroupSpot, framework.GroupSpotNVMe},
			wantSameZone:     true,
			wantDriverRules:  []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes", "zone.driver-capacity"},
			wantExecRules:    []string{"capacity.executor-spot", "isolation.spark-nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver"},
		},
		"on-demand profile: driver and executors on on-demand": {
			podProfile:       "on-demand",
			wantDriverGroups: []string{framework.GroupOnDemand, framework.GroupOnDemandNVMe},
			wantExecGroups:   []string{framework.GroupOnDemand, framework.GroupOnDemandNVMe},
			wantSameZone:     true,
			wantDriverRules:  []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes", "zone.driver-capacity"},
			wantExecRules:    []string{"capacity.executor-on-demand", "isolation.spark-nodes", "zone.executor-follows-driver"},
		},
		"nvme profile: NVMe nodes, hostPath local dirs, chown init container": {
			podProfile:       "nvme",
			wantDriverGroups: []string{framework.GroupOnDemandNVMe},
			wantExecGroups:   []string{framework.GroupSpotNVMe},
			wantSameZone:     true,
			wantNVMe:         true,
			wantDriverRules: []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes",
				"nvme.chown-init", "nvme.hostpath-local-dirs", "nvme.nodes", "zone.driver-capacity"},
			wantExecRules: []string{"capacity.executor-spot", "isolation.spark-nodes",
				"nvme.chown-init", "nvme.hostpath-local-dirs", "nvme.nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver"},
		},
		"nvme as the namespace's default profile": {
			namespaceLabels:  map[string]string{sparksim.LabelProfile: "nvme"},
			wantDriverGroups: []string{framework.GroupOnDemandNVMe},
			wantExecGroups:   []string{framework.GroupSpotNVMe},
			wantSameZone:     true,
			wantNVMe:         true,
			wantDriverRules: []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes",
				"nvme.chown-init", "nvme.hostpath-local-dirs", "nvme.nodes", "zone.driver-capacity"},
			wantExecRules: []string{"capacity.executor-spot", "isolation.spark-nodes",
				"nvme.chown-init", "nvme.hostpath-local-dirs", "nvme.nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver"},
		},
		"fargate profile: Fargate nodes, no node-bound change": {
			podProfile:       "fargate",
			wantDriverGroups: []string{framework.GroupFargate},
			wantExecGroups:   []string{framework.GroupFargate},
			wantFargate:      true,
			wantDriverRules:  []string{"fargate.profile"},
			wantExecRules:    []string{"fargate.profile"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t, tc.namespaceLabels)
			app := sparksim.NewApp("spark-pi", ns)
			if tc.podProfile != "" {
				app.WithProfile(tc.podProfile)
			}
			driver, execs := runApp(t, app, executors, sparksim.Allocator{})

			if !slices.Contains(tc.wantDriverGroups, driver.group()) {
				t.Errorf("driver on %s (group %q), want one of %v", driver.Node.Name, driver.group(), tc.wantDriverGroups)
			}
			if diff := cmp.Diff(tc.wantDriverRules, driver.rules(t)); diff != "" {
				t.Errorf("driver rules (-want +got):\n%s", diff)
			}
			checkPodChanges(t, driver, tc.wantNVMe, tc.wantFargate)
			for _, e := range execs {
				if !slices.Contains(tc.wantExecGroups, e.group()) {
					t.Errorf("executor %s on %s (group %q), want one of %v", e.Pod.Name, e.Node.Name, e.group(), tc.wantExecGroups)
				}
				if tc.wantSameZone && e.zone() != driver.zone() {
					t.Errorf("executor %s in zone %s, driver in %s", e.Pod.Name, e.zone(), driver.zone())
				}
				if diff := cmp.Diff(tc.wantExecRules, e.rules(t)); diff != "" {
					t.Errorf("executor %s rules (-want +got):\n%s", e.Pod.Name, diff)
				}
				checkPodChanges(t, e, tc.wantNVMe, tc.wantFargate)
			}
		})
	}
}

// checkPodChanges checks the local dirs, init containers and node-bound constraints of a placed Spark pod.
func checkPodChanges(t *testing.T, p placed, wantNVMe, wantFargate bool) {
	t.Helper()
	spark := p.Pod.Spec.Containers[len(p.Pod.Spec.Containers)-1] // Spark appends its container last
	localDirs := map[string]string{}                             // volume name → mount path
	for _, m := range spark.VolumeMounts {
		if strings.HasPrefix(m.Name, "spark-local-dir-") {
			localDirs[m.Name] = m.MountPath
		}
	}
	if len(localDirs) == 0 {
		t.Fatalf("pod %s: Spark's local-dir mount is gone", p.Pod.Name)
	}
	for _, v := range p.Pod.Spec.Volumes {
		if _, ok := localDirs[v.Name]; !ok {
			continue
		}
		// Each local dir has a host directory of its own: <nvme root>/<namespace>/<pod>/<volume>.
		own := path.Join("/pv-disks/local", p.Pod.Namespace, p.Pod.Name, v.Name)
		switch {
		case wantNVMe && (v.HostPath == nil || v.HostPath.Path != own):
			t.Errorf("pod %s: volume %s is %+v, want a hostPath at %s", p.Pod.Name, v.Name, v.VolumeSource, own)
		case !wantNVMe && v.EmptyDir == nil:
			t.Errorf("pod %s: volume %s is %+v, want Spark's emptyDir unchanged", p.Pod.Name, v.Name, v.VolumeSource)
		}
	}
	var inits []string
	for _, c := range p.Pod.Spec.InitContainers {
		inits = append(inits, c.Name)
	}
	if wantNVMe {
		if diff := cmp.Diff([]string{"sparkplace-chown-local-dirs"}, inits); diff != "" {
			t.Errorf("pod %s: init containers (-want +got):\n%s", p.Pod.Name, diff)
		}
		if p.Node.Labels[framework.LabelDisk] != "nvme" {
			t.Errorf("pod %s on %s, which has no NVMe (disk=nvme)", p.Pod.Name, p.Node.Name)
		}
		// The init container mounts only the pod's own directory, never Spark's volumes or the user's, and
		// prepares the local dirs in it by volume name.
		// (The API server may also mount the service-account token into it: not ours to check.)
		for _, c := range p.Pod.Spec.InitContainers {
			for _, m := range c.VolumeMounts {
				if m.Name != placement.LocalDirsVolume && !strings.HasPrefix(m.Name, "kube-api-access-") {
					t.Errorf("pod %s: init container %s mounts %s", p.Pod.Name, c.Name, m.Name)
				}
			}
			for name := range localDirs {
				if !slices.Contains(c.Command, name) {
					t.Errorf("pod %s: init container %s does not prepare %s: %q", p.Pod.Name, c.Name, name, c.Command)
				}
			}
		}
	} else if len(inits) > 0 {
		t.Errorf("pod %s: unexpected init containers %v", p.Pod.Name, inits)
	}
	if wantFargate {
		if p.Node.Labels[framework.LabelComputeType] != "fargate" {
			t.Errorf("pod %s on %s, not a Fargate node", p.Pod.Name, p.Node.Name)
		}
		if p.Pod.Labels["sparkplace.io/compute"] != "fargate" {
			t.Errorf("pod %s: no Fargate profile label: %v", p.Pod.Name, p.Pod.Labels)
		}
		// Node-bound changes would strand a Fargate pod: no capacity or isolation selector, no affinity.
		for _, key := range []string{framework.LabelEKSCapacityType, framework.LabelNodeRole, framework.LabelDisk} {
			if v, ok := p.Pod.Spec.NodeSelector[key]; ok {
				t.Errorf("pod %s: Fargate pod selects %s=%s", p.Pod.Name, key, v)
			}
		}
		if p.Pod.Spec.Affinity != nil {
			t.Errorf("pod %s: Fargate pod got affinity %+v", p.Pod.Name, p.Pod.Spec.Affinity)
		}
	}
	if !wantFargate && !hasToleration(p.Pod, framework.SparkTaint) {
		t.Errorf("pod %s does not tolerate the Spark node taint: %+v", p.Pod.Name, p.Pod.Spec.Tolerations)
	}
}

func hasToleration(p *corev1.Pod, taint corev1.Taint) bool {
	for _, tol := range p.Spec.Tolerations {
		if tol.Key == taint.Key && tol.Effect == taint.Effect &&
			(tol.Operator == corev1.TolerationOpExists || tol.Value == taint.Value) {
			return true
		}
	}
	return false
}
