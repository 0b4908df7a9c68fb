package submit

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// driverVolumes is MountVolumesFeatureStep for spark.kubernetes.driver.volumes.<type>.<name>.*.
func (b *builder) driverVolumes() ([]corev1.Volume, []corev1.VolumeMount, error) {
	const prefix = "spark.kubernetes.driver.volumes."
	type spec struct{ kind, name string }
	var specs []spec
	seen := map[spec]bool{}
	for _, k := range sortedKeys(b.props) {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, ".", 3)
		if len(parts) != 3 {
			return nil, nil, invalidf("%s: expected %s<type>.<name>.(mount|options).<key>", k, prefix)
		}
		s := spec{parts[0], parts[1]}
		if !seen[s] {
			seen[s] = true
			specs = append(specs, s)
		}
	}
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	for _, s := range specs {
		p := prefix + s.kind + "." + s.name + "."
		get := func(k string) string { return b.props[p+k] }
		mountPath := get("mount.path")
		if mountPath == "" {
			return nil, nil, invalidf("%smount.path is required", p)
		}
		vol := corev1.Volume{Name: s.name}
		switch s.kind {
		case "hostPath":
			if get("options.path") == "" {
				return nil, nil, invalidf("%soptions.path is required", p)
			}
			vol.HostPath = &corev1.HostPathVolumeSource{Path: get("options.path")}
			if t := get("options.type"); t != "" {
				vol.HostPath.Type = ptr(corev1.HostPathType(t))
			}
		case "emptyDir":
			vol.EmptyDir = &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMedium(get("options.medium"))}
			if l := get("options.sizeLimit"); l != "" {
				q, err := resource.ParseQuantity(l)
				if err != nil {
					return nil, nil, invalidf("%soptions.sizeLimit=%q is not a quantity", p, l)
				}
				vol.EmptyDir.SizeLimit = &q
			}
		case "persistentVolumeClaim":
			claim := get("options.claimName")
			if claim == "" || strings.EqualFold(claim, "OnDemand") {
				return nil, nil, invalidf("%soptions.claimName must name an existing claim (on-demand claims are not created for the driver)", p)
			}
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}
		case "nfs":
			if get("options.server") == "" || get("options.path") == "" {
				return nil, nil, invalidf("%soptions.server and options.path are required", p)
			}
			vol.NFS = &corev1.NFSVolumeSource{Server: get("options.server"), Path: get("options.path")}
		default:
			return nil, nil, invalidf("%s: volume type %q is not supported (hostPath, emptyDir, persistentVolumeClaim, nfs)", p, s.kind)
		}
		if errs := validation.IsDNS1123Label(s.name); len(errs) > 0 {
			return nil, nil, invalidf("%s: volume name %q: %s", p, s.name, strings.Join(errs, "; "))
		}
		volumes = append(volumes, vol)
		mounts = append(mounts, corev1.VolumeMount{
			Name: s.name, MountPath: mountPath, SubPath: get("mount.subPath"), ReadOnly: get("mount.readOnly") == "true",
		})
	}
	return volumes, mounts, nil
}

// localDirs is LocalDirsFeatureStep: nothing when a spark-local-dir-* volume is already mounted,
// otherwise one emptyDir per directory of spark.local.dir (default /var/data/spark-<uuid>).
func (b *builder) localDirs(existing []corev1.Volume) ([]corev1.Volume, []corev1.VolumeMount, string, error) {
	for _, v := range existing {
		if strings.HasPrefix(v.Name, "spark-local-dir-") {
			return nil, nil, "", nil
		}
	}
	dirs := splitList(b.props["spark.local.dir"])
	if len(dirs) == 0 {
		raw, err := randomBytes(b.opts.Random, 16)
		if err != nil {
			return nil, nil, "", err
		}
		// Spark uses UUID.randomUUID(): version 4 bits set.
		raw[6] = raw[6]&0x0f | 0x40
		raw[8] = raw[8]&0x3f | 0x80
		u, err := uuid.FromBytes(raw)
		if err != nil {
			return nil, nil, "", fmt.Errorf("local dir name: %w", err)
		}
		dirs = []string{"/var/data/spark-" + u.String()}
	}
	medium := corev1.StorageMediumDefault
	if b.props["spark.kubernetes.local.dirs.tmpfs"] == "true" {
		medium = corev1.StorageMediumMemory
	}
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, d := range dirs {
		name := fmt.Sprintf("spark-local-dir-%d", i+1)
		volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: d})
	}
	return volumes, mounts, strings.Join(dirs, ","), nil
}
