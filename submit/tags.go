package submit

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// resourceARN is an emr-containers ARN: a virtual cluster, one of its job runs, or a job template.
var resourceARN = regexp.MustCompile(`^arn:aws[a-z-]*:emr-containers:[^:]*:[^:]*:/(?:virtualclusters/([0-9a-z]+)(?:/jobruns/([0-9a-z]+))?|jobtemplates/([0-9a-z]+))$`)

// tagged finds the object an ARN names, a copy of it as read (the base of a patch) and the tags field to
// change on it.
func (s *Submitter) tagged(ctx context.Context, arn string) (obj, base client.Object, tags *map[string]string, err error) {
	m := resourceARN.FindStringSubmatch(arn)
	switch {
	case m == nil:
		return nil, nil, nil, invalidf("resourceArn %q is not a virtual cluster, job run or job template ARN of emr-containers", arn)
	case m[3] != "":
		t, err := s.jobTemplate(ctx, m[3])
		if err != nil {
			return nil, nil, nil, err
		}
		return t, t.DeepCopy(), &t.Spec.Tags, nil
	case m[2] != "":
		r, err := s.findJobRun(ctx, m[1], m[2])
		if err != nil {
			return nil, nil, nil, err
		}
		base := r.DeepCopy()
		if r.Spec.Tags == nil {
			// A run's tags start as those of its request.
			r.Spec.Tags = r.Spec.Request.Tags
		}
		return r, base, &r.Spec.Tags, nil
	default:
		vc, err := s.virtualCluster(ctx, m[1])
		if err != nil {
			return nil, nil, nil, err
		}
		return vc, vc.DeepCopy(), &vc.Spec.Tags, nil
	}
}

// The service model's bounds on tags.
const (
	maxTags        = 50
	maxTagKey      = 128
	maxTagValue    = 256
	maxEntryPoint  = 256
	maxLabelLength = 64
)

// checkTags holds a resource's tags to the service model's bounds: at most 50, keys of 1-128 characters,
// values of at most 256.
func checkTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return invalidf("a resource holds at most %d tags, not %d", maxTags, len(tags))
	}
	for k, v := range tags {
		switch {
		case strings.TrimSpace(k) == "" || utf8.RuneCountInString(k) > maxTagKey:
			return invalidf("tag key %.40q must be 1-%d characters, not only spaces", k, maxTagKey)
		case utf8.RuneCountInString(v) > maxTagValue:
			return invalidf("the value of tag %.40q is longer than %d characters", k, maxTagValue)
		}
	}
	return nil
}

// ListTagsForResource returns the tags of the resource arn names.
func (s *Submitter) ListTagsForResource(ctx context.Context, arn string) (map[string]string, error) {
	_, _, tags, err := s.tagged(ctx, arn)
	if err != nil {
		return nil, err
	}
	return *tags, nil
}

// TagResource adds or replaces tags on the resource arn names, as the caller (RBAC decides).
func (s *Submitter) TagResource(ctx context.Context, arn string, add map[string]string) error {
	return s.retag(ctx, arn, func(tags map[string]string) {
		for k, v := range add {
			tags[k] = v
		}
	})
}

// UntagResource removes tags from the resource arn names.
func (s *Submitter) UntagResource(ctx context.Context, arn string, keys []string) error {
	return s.retag(ctx, arn, func(tags map[string]string) {
		for _, k := range keys {
			delete(tags, k)
		}
	})
}

func (s *Submitter) retag(ctx context.Context, arn string, change func(map[string]string)) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	obj, base, tags, err := s.tagged(ctx, arn)
	if err != nil {
		return err
	}
	updated := merge(*tags)
	change(updated)
	if err := checkTags(updated); err != nil {
		return err
	}
	*tags = updated
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("tagging %s: %w", arn, err)
	}
	return nil
}
