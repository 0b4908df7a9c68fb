package submit

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// VirtualCluster is emr-containers' VirtualCluster: the view of a v1alpha1.VirtualCluster.
type VirtualCluster struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	ARN               string            `json:"arn"`
	State             string            `json:"state"`
	ContainerProvider ContainerProvider `json:"containerProvider"`
	CreatedAt         time.Time         `json:"createdAt"`
	Tags              map[string]string `json:"tags,omitempty"`
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

// Virtual-cluster states, as the API types define them.
const (
	VirtualClusterRunning     = v1alpha1.VirtualClusterRunning
	VirtualClusterTerminating = v1alpha1.VirtualClusterTerminating
	VirtualClusterTerminated  = v1alpha1.VirtualClusterTerminated
	VirtualClusterArrested    = v1alpha1.VirtualClusterArrested
)

var vcNamePattern = regexp.MustCompile(`^[.\-_/#A-Za-z0-9]{1,64}$`)

// NamespaceRule says why namespace may not back a virtual cluster ("" when it may): it must exist, carry
// the platform team's label sparkplace.io/virtual-clusters=true, and be neither a kube-* system namespace
// nor one of protected (sparkplace's own). The controller applies the same rule to every VirtualCluster.
func NamespaceRule(ns *corev1.Namespace, protected []string) string {
	switch {
	case strings.HasPrefix(ns.Name, "kube-") || slices.Contains(protected, ns.Name):
		return fmt.Sprintf("namespace %s is a system namespace and can never back a virtual cluster", ns.Name)
	case ns.Labels[v1alpha1.LabelVirtualClustersAllowed] != "true":
		return fmt.Sprintf("namespace %s is not open to virtual clusters: the platform team labels it %s=true", ns.Name, v1alpha1.LabelVirtualClustersAllowed)
	}
	return ""
}

// VirtualClusterOption sets an optional field of a new virtual cluster.
type VirtualClusterOption func(*v1alpha1.VirtualClusterSpec)

// WithContainerProviderID records the containerProvider.id the caller gave (EMR: the EKS cluster's name).
func WithContainerProviderID(id string) VirtualClusterOption {
	return func(s *v1alpha1.VirtualClusterSpec) { s.ContainerProviderID = id }
}

// WithTags records the virtual cluster's tags.
func WithTags(tags map[string]string) VirtualClusterOption {
	return func(s *v1alpha1.VirtualClusterSpec) { s.Tags = tags }
}

// CreateVirtualCluster registers namespace as a virtual cluster. The namespace must already exist and be
// open to virtual clusters (NamespaceRule). A namespace holds one live virtual cluster; creating the same
// name on the same namespace again returns the existing one.
func (s *Submitter) CreateVirtualCluster(ctx context.Context, name, namespace string, opts ...VirtualClusterOption) (*VirtualCluster, error) {
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
	var ns corev1.Namespace
	switch err := s.opts.Directory.Get(ctx, client.ObjectKey{Name: namespace}, &ns); {
	case apierrors.IsNotFound(err):
		return nil, invalidf("namespace %s does not exist: the platform team creates it and labels it %s=true", namespace, v1alpha1.LabelVirtualClustersAllowed)
	case err != nil:
		return nil, fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if why := NamespaceRule(&ns, s.opts.ProtectedNamespaces); why != "" {
		return nil, invalidf("%s", why)
	}
	var existing v1alpha1.VirtualClusterList
	if err := s.opts.Directory.List(ctx, &existing, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing virtual clusters in %s: %w", namespace, err)
	}
	for i := range existing.Items {
		old := &existing.Items[i]
		if s.viewVirtualCluster(old).State == VirtualClusterTerminated {
			continue
		}
		if old.Spec.Name == name {
			// A retried create (the SDKs retry on timeouts) gets the virtual cluster it made.
			return s.viewVirtualCluster(old), nil
		}
		return nil, invalidf("namespace %s is already virtual cluster %s (%s)", namespace, old.Name, old.Spec.Name)
	}
	id, err := s.randomID(virtualClusterIDLength)
	if err != nil {
		return nil, err
	}
	vc := &v1alpha1.VirtualCluster{
		ObjectMeta: metav1.ObjectMeta{
			Name: id, Namespace: namespace,
			Labels: map[string]string{LabelVirtualClusterID: id, labelManagedBy: managedBy},
		},
		Spec: v1alpha1.VirtualClusterSpec{Name: name, ContainerProviderID: s.opts.ClusterName},
	}
	for _, o := range opts {
		o(&vc.Spec)
	}
	if len(vc.Spec.ContainerProviderID) > 64 {
		return nil, invalidf("containerProvider.id is longer than 64 characters")
	}
	if err := checkTags(vc.Spec.Tags); err != nil {
		return nil, err
	}
	if err := c.Create(ctx, vc); err != nil {
		return nil, fmt.Errorf("creating virtual cluster on %s: %w", namespace, err)
	}
	return s.viewVirtualCluster(vc), nil
}

// viewVirtualCluster is the emr-containers view. A virtual cluster the controller has not looked at yet is
// RUNNING (its namespace was checked on create); one being deleted is TERMINATING until its runs are over.
func (s *Submitter) viewVirtualCluster(vc *v1alpha1.VirtualCluster) *VirtualCluster {
	state := vc.Status.State
	switch {
	case vc.Spec.Terminate && state != VirtualClusterTerminated:
		state = VirtualClusterTerminating
	case state == "":
		state = VirtualClusterRunning
	}
	return &VirtualCluster{
		ID:    vc.Name,
		Name:  vc.Spec.Name,
		ARN:   fmt.Sprintf("arn:aws:emr-containers:%s:%s:/virtualclusters/%s", s.opts.Region, s.opts.AccountID, vc.Name),
		State: state,
		ContainerProvider: ContainerProvider{
			ID: firstNonEmpty(vc.Spec.ContainerProviderID, s.opts.ClusterName), Type: "EKS", Info: ContainerInfo{EKSInfo: EKSInfo{Namespace: vc.Namespace}},
		},
		CreatedAt: wireTime(vc.CreationTimestamp.Time),
		Tags:      vc.Spec.Tags,
	}
}

// ListVirtualClusters returns the virtual clusters the caller may read, newest first, optionally only
// those in states.
func (s *Submitter) ListVirtualClusters(ctx context.Context, states ...string) ([]VirtualCluster, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	var list v1alpha1.VirtualClusterList
	err = c.List(ctx, &list)
	if apierrors.IsForbidden(err) {
		// A tenant may read the virtual clusters of its own namespaces only: ask namespace by namespace.
		list.Items, err = s.listReadableVirtualClusters(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("listing virtual clusters: %w", err)
	}
	var out []VirtualCluster
	for i := range list.Items {
		vc := s.viewVirtualCluster(&list.Items[i])
		if len(states) == 0 || slices.Contains(states, vc.State) {
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

func (s *Submitter) listReadableVirtualClusters(ctx context.Context) ([]v1alpha1.VirtualCluster, error) {
	var all v1alpha1.VirtualClusterList
	if err := s.opts.Directory.List(ctx, &all); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []v1alpha1.VirtualCluster
	for _, vc := range all.Items {
		if seen[vc.Namespace] {
			continue
		}
		seen[vc.Namespace] = true
		var mine v1alpha1.VirtualClusterList
		switch err := s.opts.Client.List(ctx, &mine, client.InNamespace(vc.Namespace)); {
		case apierrors.IsForbidden(err):
		case err != nil:
			return nil, err
		default:
			out = append(out, mine.Items...)
		}
	}
	return out, nil
}

// DescribeVirtualCluster returns one virtual cluster, or a *NotFoundError.
func (s *Submitter) DescribeVirtualCluster(ctx context.Context, id string) (*VirtualCluster, error) {
	vc, err := s.virtualCluster(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.viewVirtualCluster(vc), nil
}

// DeleteVirtualCluster marks the virtual cluster for termination; the controller makes it TERMINATED and
// the job-run history stays. It refuses while job runs are still active, so no driver is orphaned.
func (s *Submitter) DeleteVirtualCluster(ctx context.Context, id string) (*VirtualCluster, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	vc, err := s.virtualCluster(ctx, id)
	if err != nil {
		return nil, err
	}
	if !vc.Spec.Terminate {
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
		base := vc.DeepCopy()
		vc.Spec.Terminate = true
		if err := c.Patch(ctx, vc, client.MergeFrom(base)); err != nil {
			return nil, fmt.Errorf("terminating virtual cluster %s: %w", id, err)
		}
	}
	return s.viewVirtualCluster(vc), nil
}

// virtualCluster finds a virtual cluster by id with the Directory, then reads it as the caller, so RBAC
// decides whether the caller may use it.
func (s *Submitter) virtualCluster(ctx context.Context, id string) (*v1alpha1.VirtualCluster, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalidf("virtualClusterId is required")
	}
	if errs := validation.IsDNS1123Label(id); len(errs) > 0 {
		return nil, &NotFoundError{Kind: "virtual cluster", ID: id}
	}
	var list v1alpha1.VirtualClusterList
	err = s.opts.Directory.List(ctx, &list, client.MatchingLabels{LabelVirtualClusterID: id})
	if apierrors.IsForbidden(err) && s.opts.Namespace != "" {
		// A tenant using the CLI may not list every namespace: look in its own.
		err = s.opts.Directory.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.MatchingLabels{LabelVirtualClusterID: id})
	}
	if err != nil {
		return nil, fmt.Errorf("looking up virtual cluster %s: %w", id, err)
	}
	for i := range list.Items {
		if list.Items[i].Name != id {
			continue
		}
		var vc v1alpha1.VirtualCluster
		if err := c.Get(ctx, client.ObjectKeyFromObject(&list.Items[i]), &vc); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &NotFoundError{Kind: "virtual cluster", ID: id}
			}
			return nil, fmt.Errorf("reading virtual cluster %s: %w", id, err)
		}
		return &vc, nil
	}
	return nil, &NotFoundError{Kind: "virtual cluster", ID: id}
}
