package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/policies"
)

// ZoneLabel is the well-known node label the driver's zone is read from.
const ZoneLabel = corev1.LabelTopologyZone

// ClusterState answers the questions a placement asks of the cluster. It reads through a client.Reader:
// in the server an informer cache limited to driver pods, node metadata and namespace metadata; in
// `policy eval` the objects of --objects.
type ClusterState struct {
	Reader client.Reader
}

// Namespace returns the namespace with its labels; a namespace the reader does not know has none.
func (c ClusterState) Namespace(ctx context.Context, name string) (policies.Namespace, error) {
	ns := policies.Namespace{Name: name}
	meta := metadataOf("Namespace")
	if err := c.Reader.Get(ctx, client.ObjectKey{Name: name}, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return ns, nil
		}
		return ns, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	ns.Labels = meta.Labels
	return ns, nil
}

// Driver finds an executor's driver: by its controller ownerReference (what Spark sets), else by the
// spark-app-selector label. A driver not (yet) known gives Driver{Found: false}, not an error: the policy
// then falls back to pod affinity.
func (c ClusterState) Driver(ctx context.Context, namespace string, executor *corev1.Pod) (policies.Driver, error) {
	driver, err := c.findDriver(ctx, namespace, executor)
	if err != nil || driver == nil {
		return policies.Driver{}, err
	}
	out := policies.Driver{Found: true, Name: driver.Name, NodeName: driver.Spec.NodeName}
	if out.NodeName == "" {
		return out, nil
	}
	node := metadataOf("Node")
	if err := c.Reader.Get(ctx, client.ObjectKey{Name: out.NodeName}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return out, nil
		}
		return out, fmt.Errorf("reading node %s of driver %s/%s: %w", out.NodeName, namespace, driver.Name, err)
	}
	out.Zone = node.Labels[ZoneLabel]
	return out, nil
}

func (c ClusterState) findDriver(ctx context.Context, namespace string, executor *corev1.Pod) (*corev1.Pod, error) {
	if owner := metav1.GetControllerOfNoCopy(executor); owner != nil && owner.Kind == "Pod" && owner.APIVersion == "v1" {
		pod := &corev1.Pod{}
		err := c.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: owner.Name}, pod)
		switch {
		case err == nil:
			return pod, nil
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("reading driver pod %s/%s: %w", namespace, owner.Name, err)
		}
	}
	app := executor.Labels[LabelAppID]
	if app == "" {
		return nil, nil
	}
	var pods corev1.PodList
	if err := c.Reader.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{LabelAppID: app, LabelRole: RoleDriver}); err != nil {
		return nil, fmt.Errorf("listing driver pods of %s in %s: %w", app, namespace, err)
	}
	if len(pods.Items) == 0 {
		return nil, nil
	}
	return &pods.Items[0], nil
}
