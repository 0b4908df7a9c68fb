package webhook

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
	"github.com/sparkplace/sparkplace/zonecapacity"
)

// The driver annotations that size a job for the zone choice (the submitter sets them from spark.executor.*;
// spark-submit users through spark.kubernetes.driver.annotation.*).
const (
	AnnotationExecutors      = "sparkplace.io/executors"
	AnnotationExecutorCPU    = "sparkplace.io/executor-cpu"
	AnnotationExecutorMemory = "sparkplace.io/executor-memory"
)

// zoneSteer is one driver's zone choice while its admission is decided.
type zoneSteer struct {
	app       string
	choice    zonecapacity.Choice
	executors int
	// notes explain the choice, and size-hint annotations that could not be read.
	notes []string
}

// poolKey identifies the executor pool of a driver: the executors of one profile, under one policy version.
type poolKey struct{ bundle, profile, namespaceProfile, localDirs string }

// driverPools remembers the capacity pool of each profile, so a driver admission costs one map lookup here,
// not a policy evaluation.
type driverPools struct {
	mu  sync.Mutex
	ids map[poolKey]zonecapacity.PoolID
}

// chooseDriverZone asks the capacity index for the zone where the driver's executors fit best, and reserves
// their size there. nil when the config turns the choice off or no zone is known.
func (p *Placer) chooseDriverZone(ctx context.Context, policy *policies.Version, pod *corev1.Pod, ns policies.Namespace) *zoneSteer {
	dz := policy.DriverZone()
	if !dz.Enabled {
		return nil
	}
	pool, ok := p.executorPool(ctx, policy, pod, ns)
	if !ok {
		return nil
	}
	s := &zoneSteer{}
	if app := pod.Labels[LabelAppID]; app != "" {
		s.app = pod.Namespace + "/" + app
	}
	per := zonecapacity.Resources{MilliCPU: dz.DefaultExecutor.CPU.MilliValue(), Memory: dz.DefaultExecutor.Memory.Value()}
	if v, set := pod.Annotations[AnnotationExecutors]; set {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			s.executors = n
		} else {
			s.notes = append(s.notes, fmt.Sprintf("annotation %s=%q is not a number of executors: ignored", AnnotationExecutors, v))
		}
	}
	quantity := func(key string, into *int64, milli bool) {
		v, set := pod.Annotations[key]
		if !set {
			return
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(v))
		if err != nil || q.Sign() <= 0 {
			s.notes = append(s.notes, fmt.Sprintf("annotation %s=%q is not a positive quantity: the default is used", key, v))
			return
		}
		if milli {
			*into = q.MilliValue()
		} else {
			*into = q.Value()
		}
	}
	quantity(AnnotationExecutorCPU, &per.MilliCPU, true)
	quantity(AnnotationExecutorMemory, &per.Memory, false)
	var zones map[string]zonecapacity.ZoneHint
	if len(dz.Zones) > 0 {
		zones = make(map[string]zonecapacity.ZoneHint, len(dz.Zones))
		for name, h := range dz.Zones {
			hint := zonecapacity.ZoneHint{Weight: h.Weight}
			if h.CPU != nil {
				hint.Capacity.MilliCPU = h.CPU.MilliValue()
			}
			if h.Memory != nil {
				hint.Capacity.Memory = h.Memory.Value()
			}
			zones[name] = hint
		}
	}
	s.choice = p.Cluster.Capacity().Choose(zonecapacity.Request{
		App: s.app, Pool: pool, Executors: s.executors, PerExecutor: per, Zones: zones,
		TTL: time.Duration(dz.ReservationSeconds) * time.Second,
	})
	if s.choice.Zone == "" {
		return nil
	}
	return s
}

// executorPool is the capacity pool the driver's executors will use: the nodes the policy sends an executor
// of the driver's profile to (its node selector, tolerations and required node affinity other than the zone).
func (p *Placer) executorPool(ctx context.Context, policy *policies.Version, driver *corev1.Pod, ns policies.Namespace) (zonecapacity.PoolID, bool) {
	label := policy.DriverZone().ProfileLabel
	volumes, mounts := driverLocalDirs(driver)
	key := poolKey{bundle: policy.Hash(), profile: driver.Labels[label], namespaceProfile: ns.Labels[label], localDirs: localDirsKey(volumes)}
	p.pools.mu.Lock()
	id, ok := p.pools.ids[key]
	p.pools.mu.Unlock()
	if ok {
		return id, true
	}
	executor := &corev1.Pod{}
	executor.Namespace = driver.Namespace
	executor.Labels = map[string]string{LabelRole: RoleExecutor}
	if key.profile != "" {
		executor.Labels[label] = key.profile
	}
	// Executors get local dirs of the driver's kind (Spark's tmpfs setting covers both, and they inherit the
	// driver's local-dir paths): whether they are Spark's emptyDirs decides whether the nvme profile sends the
	// executors to NVMe nodes.
	executor.Spec.Volumes = volumes
	executor.Spec.Containers = []corev1.Container{{Name: "spark-kubernetes-executor", VolumeMounts: mounts}}
	d, err := policy.Decide(ctx, buildInput(executor, RoleExecutor, "CREATE", ns, policies.Driver{}, policies.Zone{}))
	if err != nil || len(d.Deny) > 0 {
		return 0, false // the driver's own decision reports a broken policy
	}
	zoneKey := policy.Zone().TopologyKey
	pool := zonecapacity.Pool{ZoneKey: zoneKey, NodeSelector: d.NodeSelector, Tolerations: d.Tolerations}
	for _, r := range d.NodeAffinity {
		if r.Key != zoneKey {
			pool.Requirements = append(pool.Requirements, r)
		}
	}
	id = p.Cluster.Capacity().Pool(pool)
	p.pools.mu.Lock()
	if p.pools.ids == nil {
		p.pools.ids = map[poolKey]zonecapacity.PoolID{}
	}
	// The labels' values refer to the admission request's bytes (decodeAdmittedPod): the map keeps copies.
	key.profile, key.namespaceProfile = strings.Clone(key.profile), strings.Clone(key.namespaceProfile)
	p.pools.ids[key] = id
	p.pools.mu.Unlock()
	return id, true
}

// driverLocalDirs are the driver's spark-local-dir-* volumes and its Spark container's mounts of them (Spark's
// container: named as Spark names it, else the last one).
func driverLocalDirs(driver *corev1.Pod) ([]corev1.Volume, []corev1.VolumeMount) {
	var volumes []corev1.Volume
	for _, v := range driver.Spec.Volumes {
		if strings.HasPrefix(v.Name, placement.LocalDirVolumePrefix) {
			volumes = append(volumes, v)
		}
	}
	cs := driver.Spec.Containers
	if len(volumes) == 0 || len(cs) == 0 {
		return volumes, nil
	}
	spark := cs[len(cs)-1]
	if i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == "spark-kubernetes-driver" }); i >= 0 {
		spark = cs[i]
	}
	var mounts []corev1.VolumeMount
	for _, m := range spark.VolumeMounts {
		if strings.HasPrefix(m.Name, placement.LocalDirVolumePrefix) {
			mounts = append(mounts, m)
		}
	}
	return volumes, mounts
}

// localDirsKey tells apart the kinds of local dirs a policy may treat differently.
func localDirsKey(volumes []corev1.Volume) string {
	var b strings.Builder
	for _, v := range volumes {
		b.WriteString(v.Name)
		switch {
		case v.EmptyDir != nil:
			fmt.Fprintf(&b, ":emptyDir/%s/%v;", v.EmptyDir.Medium, v.EmptyDir.SizeLimit != nil)
		case v.PersistentVolumeClaim != nil:
			b.WriteString(":pvc;")
		case v.HostPath != nil:
			b.WriteString(":hostPath;")
		default:
			b.WriteString(":other;")
		}
	}
	return b.String()
}

// settle keeps the reservation when the decision steers the driver to the chosen zone (and explains it), and
// gives it back otherwise (the user set a zone, the policy chose not to steer, the pod was denied).
func (p *Placer) settle(s *zoneSteer, d *placement.Decision, zoneKey string) []string {
	if d == nil || len(d.Deny) > 0 || !prefersZone(d, zoneKey, s.choice.Zone) {
		p.Cluster.Capacity().Forget(s.app)
		return s.notes
	}
	if p.Metrics != nil {
		p.Metrics.DriverZoneChoices.WithLabelValues(s.choice.Zone, s.choice.Reason).Inc()
		for _, z := range s.choice.Zones {
			p.Metrics.ZoneFreeSpotCPU.WithLabelValues(z.Zone).Set(float64(z.Free.MilliCPU) / 1000)
		}
	}
	return append([]string{"driver zone " + s.choice.Explain(s.executors)}, s.notes...)
}

// forgetZone gives back the zone reservation a driver's admission made.
func (p *Placer) forgetZone(driver *corev1.Pod) {
	if app := driver.Labels[LabelAppID]; app != "" {
		p.Cluster.Capacity().Forget(driver.Namespace + "/" + app)
	}
}

func prefersZone(d *placement.Decision, key, zone string) bool {
	for _, t := range d.PreferredNodeAffinity {
		for _, r := range t.Preference.MatchExpressions {
			if r.Key == key && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 && r.Values[0] == zone {
				return true
			}
		}
	}
	return false
}
