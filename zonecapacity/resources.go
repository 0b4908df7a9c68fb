package zonecapacity

import (
	corev1 "k8s.io/api/core/v1"
)

// Resources is an amount of CPU (millicores) and memory (bytes).
type Resources struct {
	MilliCPU int64 `json:"milliCPU"`
	Memory   int64 `json:"memory"`
}

func (r Resources) plus(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU + o.MilliCPU, Memory: r.Memory + o.Memory}
}

func (r Resources) minus(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU - o.MilliCPU, Memory: r.Memory - o.Memory}
}

func (r Resources) times(n int) Resources {
	return Resources{MilliCPU: r.MilliCPU * int64(n), Memory: r.Memory * int64(n)}
}

// atLeastZero clamps each amount at zero: a node overcommitted in memory has no memory to give, whatever its CPU.
func (r Resources) atLeastZero() Resources {
	return Resources{MilliCPU: max(r.MilliCPU, 0), Memory: max(r.Memory, 0)}
}

// isZero reports whether r holds no CPU or no memory: nothing can run in it.
func (r Resources) isZero() bool { return r.MilliCPU <= 0 || r.Memory <= 0 }

// count is how many pods of size per fit in r (by the scarcer resource); a zero per counts as fitting once.
func (r Resources) count(per Resources) int64 {
	n := int64(-1)
	if per.MilliCPU > 0 {
		n = r.MilliCPU / per.MilliCPU
	}
	if per.Memory > 0 {
		if m := r.Memory / per.Memory; n < 0 || m < n {
			n = m
		}
	}
	if n < 0 {
		return 1
	}
	return max(n, 0)
}

// ResourcesOf reads cpu and memory of a ResourceList.
func ResourcesOf(l corev1.ResourceList) Resources {
	var r Resources
	if q, ok := l[corev1.ResourceCPU]; ok {
		r.MilliCPU = q.MilliValue()
	}
	if q, ok := l[corev1.ResourceMemory]; ok {
		r.Memory = q.Value()
	}
	return r
}

// PodRequests is what the scheduler reserves for a pod: the sum of its containers' requests, or the largest
// init container's when that is more (init containers run one at a time, before the others), plus the pod
// overhead. Restartable init containers (sidecars) run beside the containers and add to them.
func PodRequests(spec *corev1.PodSpec) Resources {
	var sum, sidecars, initMax Resources
	for _, c := range spec.Containers {
		sum = sum.plus(ResourcesOf(c.Resources.Requests))
	}
	for _, c := range spec.InitContainers {
		r := ResourcesOf(c.Resources.Requests)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars = sidecars.plus(r)
			continue
		}
		// An init container runs beside the sidecars started before it.
		initMax = Resources{MilliCPU: max(initMax.MilliCPU, r.MilliCPU+sidecars.MilliCPU), Memory: max(initMax.Memory, r.Memory+sidecars.Memory)}
	}
	sum = sum.plus(sidecars)
	sum = Resources{MilliCPU: max(sum.MilliCPU, initMax.MilliCPU), Memory: max(sum.Memory, initMax.Memory)}
	return sum.plus(ResourcesOf(spec.Overhead))
}
