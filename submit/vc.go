package submit

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// VirtualCluster is emr-containers' VirtualCluster; here it is a namespace carrying the
// sparkplace.io/virtual-cluster-id label, with its name, state and creation time as annotations.
type VirtualCluster struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	ARN               string            `json:"arn"`
	State             string            `json:"state"`
	ContainerProvider ContainerProvider `json:"containerProvider"`
	CreatedAt         time.Time         `json:"createdAt"`
}

// ContainerProvider is where a virtual cluster runs: always an "EKS"-typed provider with a namespace.
type ContainerProvider struct {
	ID   string        `json:"id"`
	Type string        `json:"type"`
	Info ContainerInfo `json:"info"`
}

// ContainerInfo holds the EKS-specific part.
type ContainerInfo struct {
	EKSInfo EKSInfo `json:"eksInfo"`
}

// EKSInfo names the namespace.
type EKSInfo struct {
	Namespace string `json:"namespace"`
}

// Virtual-cluster states of emr-containers that sparkplace uses.
const (
	VirtualClusterRunning    = "RUNNING"
	VirtualClusterTerminated = "TERMINATED"
)

const (
	annotationVCName      = "sparkplace.io/virtual-cluster-name"
	annotationVCState     = "sparkplace.io/virtual-cluster-state"
	annotationVCCreatedAt = "sparkplace.io/virtual-cluster-created-at"
)

var vcNamePattern = regexp.MustCompile(`^[.\-_/#A-Za-z0-9]{1,64}$`)

// CreateVirtualCluster registers namespace as a virtual cluster, creating the namespace if needed.
// A namespace holds one live virtual cluster; a terminated one may be replaced, and creating the same
// name on the same namespace again returns the existing one.
func (s *Submitter) CreateVirtualCluster(ctx context.Context, name, namespace string) (*VirtualCluster, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	if !vcNamePattern.MatchString(name) {
		return nil, invalidf("virtual cluster name %q must be 1-64 characters of letters, digits and . - _ / #", name)
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, invalidf("namespace %q: %v", namespace, errs)
	}
	id, err := s.randomID(virtualClusterIDLength)
	if err != nil {
		return nil, err
	}
	now := s.opts.Clock.Now().UTC()
	var ns corev1.Namespace
	switch err := c.Get(ctx, client.ObjectKey{Name: namespace}, &ns); {
	case apierrors.IsNotFound(err):
		ns = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
		setVCMeta(&ns, id, name, now)
		if err := c.Create(ctx, &ns); err != nil {
			return nil, fmt.Errorf("creating namespace %s: %w", namespace, err)
		}
	case err != nil:
		return nil, fmt.Errorf("reading namespace %s: %w", namespace, err)
	default:
		if old, ok := ns.Labels[LabelVirtualClusterID]; ok && ns.Annotations[annotationVCState] != VirtualClusterTerminated {
			if ns.Annotations[annotationVCName] == name {
				// A retried create (the SDKs retry on timeouts) gets the virtual cluster it made.
				return s.virtualClusterOf(&ns), nil
			}
			return nil, invalidf("namespace %s is already virtual cluster %s (%s)", namespace, old, ns.Annotations[annotationVCName])
		}
		base := ns.DeepCopy()
		setVCMeta(&ns, id, name, now)
		if err := c.Patch(ctx, &ns, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return nil, fmt.Errorf("registering namespace %s: %w", namespace, err)
		}
	}
	return s.virtualClusterOf(&ns), nil
}

func setVCMeta(ns *corev1.Namespace, id, name string, now time.Time) {
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	ns.Labels[LabelVirtualClusterID] = id
	ns.Annotations[annotationVCName] = name
	ns.Annotations[annotationVCState] = VirtualClusterRunning
	ns.Annotations[annotationVCCreatedAt] = now.Format(time.RFC3339)
}

func (s *Submitter) virtualClusterOf(ns *corev1.Namespace) *VirtualCluster {
	id := ns.Labels[LabelVirtualClusterID]
	created, _ := time.Parse(time.RFC3339, ns.Annotations[annotationVCCreatedAt])
	state := ns.Annotations[annotationVCState]
	if state == "" {
		state = VirtualClusterRunning
	}
	return &VirtualCluster{
		ID:    id,
		Name:  ns.Annotations[annotationVCName],
		ARN:   fmt.Sprintf("arn:aws:emr-containers:%s:%s:/virtualclusters/%s", s.opts.Region, s.opts.AccountID, id),
		State: state,
		ContainerProvider: ContainerProvider{
			ID: s.opts.ClusterName, Type: "EKS", Info: ContainerInfo{EKSInfo: EKSInfo{Namespace: ns.Name}},
		},
		CreatedAt: created,
	}
}

// ListVirtualClusters returns the virtual clusters, newest first, optionally only those in states.
func (s *Submitter) ListVirtualClusters(ctx context.Context, states ...string) ([]VirtualCluster, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	req, err := labels.NewRequirement(LabelVirtualClusterID, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("building selector: %w", err)
	}
	var list corev1.NamespaceList
	if err := c.List(ctx, &list, client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}); err != nil {
		return nil, fmt.Errorf("listing virtual clusters: %w", err)
	}
	var out []VirtualCluster
	for i := range list.Items {
		vc := s.virtualClusterOf(&list.Items[i])
		if len(states) == 0 || contains(states, vc.State) {
			out = append(out, *vc)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DescribeVirtualCluster returns one virtual cluster, or a *NotFoundError.
func (s *Submitter) DescribeVirtualCluster(ctx context.Context, id string) (*VirtualCluster, error) {
	ns, err := s.virtualClusterNamespace(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.virtualClusterOf(ns), nil
}

// DeleteVirtualCluster marks the virtual cluster TERMINATED; the namespace and its job-run history stay.
// It refuses while job runs are still active, so no driver is orphaned.
func (s *Submitter) DeleteVirtualCluster(ctx context.Context, id string) (*VirtualCluster, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	ns, err := s.virtualClusterNamespace(ctx, id)
	if err != nil {
		return nil, err
	}
	if ns.Annotations[annotationVCState] != VirtualClusterTerminated {
		runs, err := s.ListJobRuns(ctx, ListJobRunsOptions{VirtualClusterID: id})
		if err != nil {
			return nil, err
		}
		var active []string
		for _, r := range runs {
			if !r.State.Terminal() {
				active = append(active, r.ID)
			}
		}
		if len(active) > 0 {
			return nil, invalidf("virtual cluster %s still has active job runs %v: cancel them first", id, active)
		}
		base := ns.DeepCopy()
		ns.Annotations[annotationVCState] = VirtualClusterTerminated
		if err := c.Patch(ctx, ns, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return nil, fmt.Errorf("terminating virtual cluster %s: %w", id, err)
		}
	}
	return s.virtualClusterOf(ns), nil
}

func (s *Submitter) virtualClusterNamespace(ctx context.Context, id string) (*corev1.Namespace, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalidf("virtualClusterId is required")
	}
	if errs := validation.IsValidLabelValue(id); len(errs) > 0 {
		return nil, &NotFoundError{Kind: "virtual cluster", ID: id}
	}
	var list corev1.NamespaceList
	if err := c.List(ctx, &list, client.MatchingLabels{LabelVirtualClusterID: id}); err != nil {
		return nil, fmt.Errorf("looking up virtual cluster %s: %w", id, err)
	}
	if len(list.Items) == 0 {
		return nil, &NotFoundError{Kind: "virtual cluster", ID: id}
	}
	return &list.Items[0], nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
