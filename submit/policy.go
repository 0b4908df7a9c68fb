package submit

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DefaultAllowedVolumeTypes are the volume types a virtual cluster allows when its policy names none: scratch
// space and the namespace's own claims, never the node's file system (hostPath) or a remote server (nfs).
var DefaultAllowedVolumeTypes = []string{"emptyDir", "persistentVolumeClaim"}

// PolicyError is a request the virtual cluster's policy refuses; Rule names the policy field.
type PolicyError struct {
	Rule    string
	Message string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("refused by the virtual cluster's %s rule: %s", e.Rule, e.Message)
}

func refused(rule, format string, args ...any) error {
	return &ValidationError{Message: "job run refused", Err: &PolicyError{Rule: rule, Message: fmt.Sprintf(format, args...)}}
}

// checkPolicy holds the resolved run against its virtual cluster's policy. Every check reads the final
// properties, so a value set through any path (spark-defaults, --conf, a dedicated option) is checked.
func (b *builder) checkPolicy() error {
	releaseImage := b.releaseImage
	p := b.target.Policy
	if p == nil {
		return nil
	}
	if len(p.AllowedExecutionRoles) > 0 && !matchesAny(p.AllowedExecutionRoles, b.req.ExecutionRoleARN) {
		return refused("allowedExecutionRoles", "executionRoleArn %s matches none of %v", b.req.ExecutionRoleARN, p.AllowedExecutionRoles)
	}
	for _, key := range []string{"spark.kubernetes.container.image", "spark.kubernetes.driver.container.image", "spark.kubernetes.executor.container.image"} {
		image, ok := b.props[key]
		if !ok {
			continue
		}
		switch {
		case len(p.AllowedImages) == 0 && image != releaseImage:
			return refused("allowedImages", "%s=%s: this virtual cluster allows only the image of releaseLabel %s (%s)", key, image, b.req.ReleaseLabel, firstNonEmpty(releaseImage, "none"))
		case len(p.AllowedImages) > 0 && !matchesAny(p.AllowedImages, image):
			return refused("allowedImages", "%s=%s matches none of %v", key, image, p.AllowedImages)
		}
	}
	for _, role := range []string{"driver", "executor"} {
		key := "spark.kubernetes.authenticate." + role + ".serviceAccountName"
		if sa, ok := b.props[key]; ok && !(b.ownAccount && sa == b.serviceAccount) && !slices.Contains(p.AllowedServiceAccounts, sa) {
			return refused("allowedServiceAccounts", "%s=%s: runs use the virtual cluster's service account for their execution role; allowed besides it: %v", key, sa, p.AllowedServiceAccounts)
		}
	}
	allowed := p.AllowedVolumeTypes
	if len(allowed) == 0 {
		allowed = DefaultAllowedVolumeTypes
	}
	for _, role := range []string{"driver", "executor"} {
		if err := b.checkPodTemplatePolicy(role, p, releaseImage, allowed); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(b.props) {
		for _, role := range []string{"driver", "executor"} {
			rest, ok := strings.CutPrefix(k, "spark.kubernetes."+role+".volumes.")
			if !ok {
				continue
			}
			if kind, _, _ := strings.Cut(rest, "."); !slices.Contains(allowed, kind) {
				return refused("allowedVolumeTypes", "%s: volume type %s is not allowed (allowed: %v)", k, kind, allowed)
			}
		}
	}
	return nil
}

// matchesAny reports whether s matches one of the patterns, where "*" matches any run of characters.
func matchesAny(patterns []string, s string) bool {
	for _, p := range patterns {
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$"
		if ok, err := regexp.MatchString(re, s); err == nil && ok {
			return true
		}
	}
	return false
}
