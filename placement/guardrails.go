package placement

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Guardrails bound what any decision may do to a pod, whatever the policies say. A decision that breaks one is
// a policy error, never applied. They are read from data.sparkplace.config.guardrails.
type Guardrails struct {
	// AllowedHostPathPrefixes are the host directories local dirs may live under. Defaults to none: no hostPath.
	AllowedHostPathPrefixes []string `json:"allowedHostPathPrefixes"`
	// AllowedCapabilities may be added by init containers. Defaults to none.
	AllowedCapabilities []corev1.Capability `json:"allowedCapabilities"`
}

// Validate returns every guardrail d breaks, joined, or nil.
func (g Guardrails) Validate(d *Decision) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for k, v := range d.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			bad("label key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			bad("label %s value %q: %s", k, v, msg)
		}
	}
	for k := range d.Annotations {
		for _, msg := range validation.IsQualifiedName(k) {
			bad("annotation key %q: %s", k, msg)
		}
		if k == AnnotationKey {
			bad("annotation %s is sparkplace's own", k)
		}
	}
	for k, v := range d.NodeSelector {
		for _, msg := range validation.IsQualifiedName(k) {
			bad("nodeSelector key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			bad("nodeSelector %s value %q: %s", k, v, msg)
		}
	}
	for _, req := range d.NodeAffinity {
		errs = append(errs, checkRequirement("node affinity", req)...)
	}
	for _, t := range d.PreferredNodeAffinity {
		if t.Weight < 1 || t.Weight > 100 {
			bad("preferred node affinity: weight %d is outside 1-100", t.Weight)
		}
		if len(t.Preference.MatchExpressions) == 0 {
			bad("preferred node affinity: a term without matchExpressions prefers every node")
		}
		for _, req := range t.Preference.MatchExpressions {
			errs = append(errs, checkRequirement("preferred node affinity", req)...)
		}
	}
	for _, c := range d.TopologySpreadConstraints {
		errs = append(errs, checkSpread(c)...)
	}
	for _, t := range d.PodAffinity {
		if t.TopologyKey == "" {
			bad("pod affinity term without topologyKey")
		}
	}
	for _, t := range d.PreferredPodAffinity {
		if t.Weight < 1 || t.Weight > 100 {
			bad("preferred pod affinity: weight %d is outside 1-100", t.Weight)
		}
		if t.PodAffinityTerm.TopologyKey == "" {
			bad("preferred pod affinity term without topologyKey")
		}
	}
	if ld := d.LocalDirs; ld != nil {
		switch ld.Type {
		case LocalDirsHostPath:
			if err := g.checkHostPath(ld.Path); err != nil {
				errs = append(errs, err)
			}
		case LocalDirsEmptyDir:
			if ld.Medium != corev1.StorageMediumDefault && ld.Medium != corev1.StorageMediumMemory {
				bad("localDirs emptyDir medium %q: want \"\" or %q", ld.Medium, corev1.StorageMediumMemory)
			}
		default:
			bad("localDirs type %q: want %q or %q", ld.Type, LocalDirsHostPath, LocalDirsEmptyDir)
		}
	}
	for _, c := range d.InitContainers {
		errs = append(errs, g.checkContainer(c)...)
	}
	return errors.Join(errs...)
}

func checkRequirement(what string, req corev1.NodeSelectorRequirement) []error {
	switch req.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(req.Values) == 0 {
			return []error{fmt.Errorf("%s on %s: operator %s needs values", what, req.Key, req.Operator)}
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
	default:
		return []error{fmt.Errorf("%s on %s: unknown operator %q", what, req.Key, req.Operator)}
	}
	return nil
}

// checkSpread keeps topology spread constraints to what can never strand a pod: ScheduleAnyway only, over a
// real topology key and a selector that names the pods to spread.
func checkSpread(c corev1.TopologySpreadConstraint) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("topology spread on %q: "+format, append([]any{c.TopologyKey}, args...)...))
	}
	for _, msg := range validation.IsQualifiedName(c.TopologyKey) {
		bad("topologyKey: %s", msg)
	}
	if c.MaxSkew < 1 {
		bad("maxSkew %d must be at least 1", c.MaxSkew)
	}
	if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
		bad("whenUnsatisfiable %q: only %s is allowed, a spread must never keep a pod Pending", c.WhenUnsatisfiable, corev1.ScheduleAnyway)
	}
	if c.LabelSelector == nil || len(c.LabelSelector.MatchLabels)+len(c.LabelSelector.MatchExpressions) == 0 {
		bad("a labelSelector naming the pods to spread is required")
	}
	return errs
}

func (g Guardrails) checkHostPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Errorf("localDirs hostPath %q: must be an absolute, clean path", p)
	}
	for _, prefix := range g.AllowedHostPathPrefixes {
		root := strings.TrimSuffix(path.Clean(prefix), "/")
		if p == root || strings.HasPrefix(p, root+"/") {
			return nil
		}
	}
	return fmt.Errorf("localDirs hostPath %q is outside the allowed prefixes %v (config guardrails.allowedHostPathPrefixes)", p, g.AllowedHostPathPrefixes)
}

func (g Guardrails) checkContainer(c corev1.Container) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("init container %q: "+format, append([]any{c.Name}, args...)...))
	}
	if msgs := validation.IsDNS1123Label(c.Name); len(msgs) > 0 {
		bad("invalid name: %s", strings.Join(msgs, "; "))
	}
	if c.Image == "" {
		bad("no image")
	}
	for _, port := range c.Ports {
		if port.HostPort != 0 {
			bad("host port %d is not allowed", port.HostPort)
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		return errs
	}
	if sc.Privileged != nil && *sc.Privileged {
		bad("privileged containers are not allowed")
	}
	if sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation {
		bad("allowPrivilegeEscalation is not allowed")
	}
	if sc.Capabilities != nil {
		for _, capability := range sc.Capabilities.Add {
			if !slices.Contains(g.AllowedCapabilities, capability) {
				bad("capability %s is not allowed (allowed: %v, config guardrails.allowedCapabilities)", capability, g.AllowedCapabilities)
			}
		}
	}
	return errs
}
