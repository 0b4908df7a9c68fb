package placement

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Guardrails bound what any decision may do to a pod, whatever the policies say: a policy can never raise a
// pod's privileges, reach other tenants' data, or take a pod off Spark's nodes. A decision that breaks one is a
// policy error, never applied. They are loaded from their own file (policies.Options.GuardrailsFile), apart
// from the tunables, so that RBAC can give them to another team.
//
// The fixed rules (see Validate) hold whatever the file says; the file only widens or narrows these lists.
type Guardrails struct {
	// AllowedHostPathPrefixes are the host directories local dirs may live under. Each must be absolute and
	// may be neither "/" nor a system directory (or a parent of one). Defaults to none: no hostPath.
	AllowedHostPathPrefixes []string `json:"allowedHostPathPrefixes"`
	// AllowedCapabilities may be added by init containers; only capabilities Pod Security "baseline" allows
	// can be listed. Defaults to none.
	AllowedCapabilities []corev1.Capability `json:"allowedCapabilities"`
	// AllowedLabelPrefixes are the label key prefixes (ending in "/") a decision may set, so that a policy
	// cannot add a label a Service (or a driver's headless Service) selects on. Defaults to none.
	AllowedLabelPrefixes []string `json:"allowedLabelPrefixes"`
}

// Violation is one guardrail a decision breaks: the decision field, as a path into the decision
// (initContainers[sparkplace-local-dirs].securityContext.capabilities.drop), and what is wrong with it.
type Violation struct {
	Field  string
	Reason string
}

func (v *Violation) Error() string { return "guardrail " + v.Field + ": " + v.Reason }

// Violations returns the violations in an error from Validate (nil for nil or another error).
func Violations(err error) []*Violation {
	var out []*Violation
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			out = append(out, Violations(e)...)
		}
		return out
	}
	var v *Violation
	if errors.As(err, &v) {
		out = append(out, v)
	}
	return out
}

// violations collects what one validation finds.
type violations []error

func (vs *violations) add(field, format string, args ...any) {
	*vs = append(*vs, &Violation{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Label keys and annotation prefixes with a meaning to the control plane that no decision may use.
const (
	labelControlPlane = "node-role.kubernetes.io/control-plane"
	labelMaster       = "node-role.kubernetes.io/master"
)

// securityAnnotationPrefixes configure a container's confinement through annotations (AppArmor, and the
// seccomp annotations older kubelets still read): a decision could unconfine Spark's own container with them.
var securityAnnotationPrefixes = []string{
	"container.apparmor.security.beta.kubernetes.io/",
	"seccomp.security.alpha.kubernetes.io/",
	"container.seccomp.security.alpha.kubernetes.io/",
}

// Validate returns every guardrail d breaks, joined (each a *Violation, see Violations), or nil. Each field
// of the Decision has its check; a new field brings its own.
func (g Guardrails) Validate(d *Decision) error {
	var vs violations
	g.checkLabels(&vs, d.Labels)
	checkAnnotations(&vs, d.Annotations)
	checkNodeSelector(&vs, d.NodeSelector)
	checkTolerations(&vs, d.Tolerations)
	for i, req := range d.NodeAffinity {
		checkRequirement(&vs, fmt.Sprintf("nodeAffinity[%d]", i), req)
	}
	for i, t := range d.PreferredNodeAffinity {
		field := fmt.Sprintf("preferredNodeAffinity[%d]", i)
		checkWeight(&vs, field, t.Weight)
		if len(t.Preference.MatchExpressions) == 0 {
			vs.add(field+".preference", "a term without matchExpressions prefers every node")
		}
		for j, req := range t.Preference.MatchExpressions {
			checkRequirement(&vs, fmt.Sprintf("%s.preference.matchExpressions[%d]", field, j), req)
		}
	}
	for i, c := range d.TopologySpreadConstraints {
		field := fmt.Sprintf("topologySpreadConstraints[%d]", i)
		checkSpread(&vs, field, c)
		checkLabelKeys(&vs, field, c.LabelSelector, c.MatchLabelKeys, nil)
	}
	for i, t := range d.PodAffinity {
		checkAffinityTerm(&vs, fmt.Sprintf("podAffinity[%d]", i), t)
	}
	for i, t := range d.PreferredPodAffinity {
		field := fmt.Sprintf("preferredPodAffinity[%d]", i)
		checkWeight(&vs, field, t.Weight)
		checkAffinityTerm(&vs, field+".podAffinityTerm", t.PodAffinityTerm)
	}
	g.checkLocalDirs(&vs, d.LocalDirs)
	for _, c := range d.InitContainers {
		g.checkInitContainer(&vs, c)
	}
	if strings.HasPrefix(d.PriorityClassName, "system-") {
		vs.add("priorityClassName", "%q is reserved for critical system pods (preempts and outlives every workload)", d.PriorityClassName)
	}
	return errors.Join(vs...)
}

func (g Guardrails) checkLabels(vs *violations, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		field := "labels[" + k + "]"
		for _, msg := range validation.IsQualifiedName(k) {
			vs.add(field, "invalid key: %s", msg)
		}
		for _, msg := range validation.IsValidLabelValue(labels[k]) {
			vs.add(field, "invalid value %q: %s", labels[k], msg)
		}
		if !slices.ContainsFunc(g.AllowedLabelPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			vs.add(field, "key outside the allowed prefixes %v (guardrails allowedLabelPrefixes): a label could make the pod an endpoint of another Service", g.AllowedLabelPrefixes)
		}
	}
}

func checkAnnotations(vs *violations, annotations map[string]string) {
	for _, k := range sortedKeys(annotations) {
		field := "annotations[" + k + "]"
		for _, msg := range validation.IsQualifiedName(k) {
			vs.add(field, "invalid key: %s", msg)
		}
		if k == AnnotationKey {
			vs.add(field, "sparkplace's own annotation")
		}
		if slices.ContainsFunc(securityAnnotationPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			vs.add(field, "configures a container's confinement")
		}
	}
}

func checkNodeSelector(vs *violations, sel map[string]string) {
	for _, k := range sortedKeys(sel) {
		field := "nodeSelector[" + k + "]"
		for _, msg := range validation.IsQualifiedName(k) {
			vs.add(field, "invalid key: %s", msg)
		}
		for _, msg := range validation.IsValidLabelValue(sel[k]) {
			vs.add(field, "invalid value %q: %s", sel[k], msg)
		}
		if k == labelControlPlane || k == labelMaster {
			vs.add(field, "selects control-plane nodes")
		}
	}
}

func checkTolerations(vs *violations, tols []corev1.Toleration) {
	for i, t := range tols {
		field := fmt.Sprintf("tolerations[%d]", i)
		switch t.Operator {
		case corev1.TolerationOpExists, corev1.TolerationOpEqual, "":
		default:
			vs.add(field+".operator", "unknown operator %q", t.Operator)
		}
		switch {
		case t.Key == "":
			vs.add(field+".key", "a toleration without a key tolerates every taint")
		case t.Key == labelControlPlane || t.Key == labelMaster:
			vs.add(field+".key", "tolerates the control-plane taint")
		}
	}
}

// checkRequirement checks one node selector requirement, required or preferred, at field.
func checkRequirement(vs *violations, field string, req corev1.NodeSelectorRequirement) {
	switch req.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(req.Values) == 0 {
			vs.add(field+".values", "operator %s on %s needs values", req.Operator, req.Key)
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
	default:
		vs.add(field+".operator", "unknown operator %q", req.Operator)
	}
	if (req.Key == labelControlPlane || req.Key == labelMaster) && (req.Operator == corev1.NodeSelectorOpIn || req.Operator == corev1.NodeSelectorOpExists) {
		vs.add(field+".key", "selects control-plane nodes")
	}
}

func checkAffinityTerm(vs *violations, field string, t corev1.PodAffinityTerm) {
	if t.TopologyKey == "" {
		vs.add(field+".topologyKey", "a pod affinity term needs a topologyKey")
	}
	checkLabelKeys(vs, field, t.LabelSelector, t.MatchLabelKeys, t.MismatchLabelKeys)
}

func checkWeight(vs *violations, field string, weight int32) {
	if weight < 1 || weight > 100 {
		vs.add(field+".weight", "weight %d is outside 1-100", weight)
	}
}

// checkSpread keeps topology spread constraints to what can never strand a pod: ScheduleAnyway only, over a
// real topology key and a selector that names the pods to spread.
func checkSpread(vs *violations, field string, c corev1.TopologySpreadConstraint) {
	for _, msg := range validation.IsQualifiedName(c.TopologyKey) {
		vs.add(field+".topologyKey", "%q: %s", c.TopologyKey, msg)
	}
	if c.MaxSkew < 1 {
		vs.add(field+".maxSkew", "maxSkew %d must be at least 1", c.MaxSkew)
	}
	if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
		vs.add(field+".whenUnsatisfiable", "%q: only %s is allowed, a spread must never keep a pod Pending", c.WhenUnsatisfiable, corev1.ScheduleAnyway)
	}
	if c.LabelSelector == nil || len(c.LabelSelector.MatchLabels)+len(c.LabelSelector.MatchExpressions)+len(c.MatchLabelKeys) == 0 {
		vs.add(field+".labelSelector", "a labelSelector naming the pods to spread is required")
	}
}

func (g Guardrails) checkLocalDirs(vs *violations, ld *LocalDirs) {
	if ld == nil {
		return
	}
	for i, v := range ld.Volumes {
		if !strings.HasPrefix(v, LocalDirVolumePrefix) {
			vs.add(fmt.Sprintf("localDirs.volumes[%d]", i), "%q is not one of Spark's %s* volumes", v, LocalDirVolumePrefix)
		}
	}
	switch ld.Type {
	case LocalDirsHostPath:
		if msg := g.hostPathProblem(ld.Path); msg != "" {
			vs.add("localDirs.path", "%s", msg)
		}
	case LocalDirsEphemeral:
		for _, msg := range validation.IsDNS1123Subdomain(ld.StorageClassName) {
			vs.add("localDirs.storageClassName", "%q: %s", ld.StorageClassName, msg)
		}
		if q, err := resource.ParseQuantity(ld.Size); err != nil || q.Sign() <= 0 {
			vs.add("localDirs.size", "%q is not a positive quantity", ld.Size)
		}
	default:
		vs.add("localDirs.type", "%q: want %q or %q", ld.Type, LocalDirsHostPath, LocalDirsEphemeral)
	}
	if ld.FSGroup != nil && *ld.FSGroup <= 0 {
		vs.add("localDirs.fsGroup", "%d would give the pod's processes the root group (or an invalid one)", *ld.FSGroup)
	}
}

func (g Guardrails) hostPathProblem(p string) string {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Sprintf("%q must be an absolute, clean path", p)
	}
	for _, prefix := range g.AllowedHostPathPrefixes {
		root := strings.TrimSuffix(path.Clean(prefix), "/")
		if p == root || strings.HasPrefix(p, root+"/") {
			return ""
		}
	}
	return fmt.Sprintf("%q is outside the allowed prefixes %v (guardrails allowedHostPathPrefixes)", p, g.AllowedHostPathPrefixes)
}

// seLinuxTypes are the SELinux types Pod Security "baseline" allows; spc_t (unconfined) is not one.
var seLinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

func (g Guardrails) checkInitContainer(vs *violations, c corev1.Container) {
	at := "initContainers[" + c.Name + "]"
	for _, msg := range validation.IsDNS1123Label(c.Name) {
		vs.add(at+".name", "%s", msg)
	}
	if c.Image == "" {
		vs.add(at+".image", "no image")
	}
	if c.RestartPolicy != nil {
		vs.add(at+".restartPolicy", "%q makes it a sidecar that runs beside Spark for the pod's whole life", *c.RestartPolicy)
	}
	for i, port := range c.Ports {
		if port.HostPort != 0 {
			vs.add(fmt.Sprintf("%s.ports[%d].hostPort", at, i), "host port %d is not allowed", port.HostPort)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			vs.add(at+".env["+e.Name+"].valueFrom.secretKeyRef", "reads Secret %s", e.ValueFrom.SecretKeyRef.Name)
		}
	}
	for i, e := range c.EnvFrom {
		if e.SecretRef != nil {
			vs.add(fmt.Sprintf("%s.envFrom[%d].secretRef", at, i), "reads Secret %s", e.SecretRef.Name)
		}
	}
	for _, m := range c.VolumeMounts {
		field := at + ".volumeMounts[" + m.Name + "]"
		if m.Name != LocalDirsVolume {
			vs.add(field, "only sparkplace's own %s volume may be mounted, never the pod's volumes", LocalDirsVolume)
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			vs.add(field+".subPath", "sub-paths are not allowed")
		}
		if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			vs.add(field+".mountPropagation", "%q is not allowed", *m.MountPropagation)
		}
	}
	if len(c.VolumeDevices) > 0 {
		vs.add(at+".volumeDevices", "block devices are not allowed")
	}
	g.checkSecurityContext(vs, at+".securityContext", c.SecurityContext)
}

func (g Guardrails) checkSecurityContext(vs *violations, at string, sc *corev1.SecurityContext) {
	if sc == nil {
		vs.add(at, "required: it must drop ALL capabilities and disallow privilege escalation")
		return
	}
	if sc.Privileged != nil && *sc.Privileged {
		vs.add(at+".privileged", "privileged containers are not allowed")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		vs.add(at+".allowPrivilegeEscalation", "must be false")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		vs.add(at+".capabilities.drop", "must drop ALL (else the runtime's default capabilities stay)")
	}
	if sc.Capabilities != nil {
		for _, capability := range sc.Capabilities.Add {
			if !slices.Contains(g.AllowedCapabilities, capability) {
				vs.add(at+".capabilities.add", "%s is not allowed (allowed: %v, guardrails allowedCapabilities)", capability, g.AllowedCapabilities)
			}
		}
	}
	if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
		vs.add(at+".seccompProfile.type", "Unconfined is not allowed")
	}
	if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined {
		vs.add(at+".appArmorProfile.type", "Unconfined is not allowed")
	}
	if se := sc.SELinuxOptions; se != nil {
		if !slices.Contains(seLinuxTypes, se.Type) {
			vs.add(at+".seLinuxOptions.type", "%q is not allowed (allowed: %v)", se.Type, seLinuxTypes[1:])
		}
		if se.User != "" || se.Role != "" {
			vs.add(at+".seLinuxOptions", "user and role may not be set")
		}
	}
	if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
		vs.add(at+".procMount", "%q is not allowed", *sc.ProcMount)
	}
	if sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess {
		vs.add(at+".windowsOptions.hostProcess", "host processes are not allowed")
	}
}

// baselineCapabilities are the capabilities Pod Security "baseline" lets a container add.
var baselineCapabilities = []corev1.Capability{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
	"SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// systemDirs hold the node's system, its kubelet's and its runtime's state: no hostPath prefix may be one of
// them, inside one, or a parent of one.
var systemDirs = []string{
	"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin", "/sys", "/usr",
	"/var/lib/containerd", "/var/lib/docker", "/var/lib/etcd", "/var/lib/kubelet", "/var/log", "/var/run",
}

// Check reports what is wrong with the guardrails themselves, as Violations on their own fields: a hostPath
// prefix of "/" (or a system directory), a capability Pod Security baseline does not allow, a label prefix
// that is not one.
func (g Guardrails) Check() error {
	var vs violations
	for i, p := range g.AllowedHostPathPrefixes {
		field := fmt.Sprintf("allowedHostPathPrefixes[%d]", i)
		clean := path.Clean(p)
		switch {
		case !path.IsAbs(p):
			vs.add(field, "%q is not an absolute path", p)
		case clean == "/":
			vs.add(field, "%q would allow every host directory", p)
		default:
			for _, dir := range systemDirs {
				if clean == dir || strings.HasPrefix(clean, dir+"/") || strings.HasPrefix(dir, clean+"/") {
					vs.add(field, "%q overlaps the system directory %s", p, dir)
					break
				}
			}
		}
	}
	for i, c := range g.AllowedCapabilities {
		if !slices.Contains(baselineCapabilities, c) {
			vs.add(fmt.Sprintf("allowedCapabilities[%d]", i), "%s is beyond what Pod Security baseline allows (%v)", c, baselineCapabilities)
		}
	}
	for i, p := range g.AllowedLabelPrefixes {
		name := strings.TrimSuffix(p, "/")
		if !strings.HasSuffix(p, "/") || len(validation.IsDNS1123Subdomain(name)) > 0 {
			vs.add(fmt.Sprintf("allowedLabelPrefixes[%d]", i), "%q is not a label prefix like example.com/", p)
		}
	}
	return errors.Join(vs...)
}
