package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit"
)

// VirtualClusterReconciler keeps a VirtualCluster's state: RUNNING on a namespace open to virtual clusters,
// ARRESTED (saying which rule) otherwise, TERMINATING then TERMINATED after a delete.
type VirtualClusterReconciler struct {
	Client client.Client
	// APIReader reads namespaces, which the controller does not cache.
	APIReader client.Reader
	// ProtectedNamespaces can never back a virtual cluster (sparkplace's own), besides kube-*.
	ProtectedNamespaces []string
}

// Reconcile records the virtual cluster's state.
func (r *VirtualClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vc v1alpha1.VirtualCluster
	if err := r.Client.Get(ctx, req.NamespacedName, &vc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	st := v1alpha1.VirtualClusterStatus{State: v1alpha1.VirtualClusterRunning}
	var wait time.Duration
	if vc.Spec.Terminate {
		active, err := r.activeRuns(ctx, &vc)
		if err != nil {
			return ctrl.Result{}, err
		}
		st.State = v1alpha1.VirtualClusterTerminated
		if active > 0 {
			st = v1alpha1.VirtualClusterStatus{State: v1alpha1.VirtualClusterTerminating, StateDetails: fmt.Sprintf("%d job runs still active", active)}
			wait = 5 * time.Second
		}
	} else {
		var ns corev1.Namespace
		switch err := r.APIReader.Get(ctx, client.ObjectKey{Name: vc.Namespace}, &ns); {
		case apierrors.IsNotFound(err):
			st = v1alpha1.VirtualClusterStatus{State: v1alpha1.VirtualClusterArrested, StateDetails: "namespace " + vc.Namespace + " is gone"}
		case err != nil:
			return ctrl.Result{}, err
		default:
			if why := submit.NamespaceRule(&ns, r.ProtectedNamespaces); why != "" {
				st = v1alpha1.VirtualClusterStatus{State: v1alpha1.VirtualClusterArrested, StateDetails: why}
			}
		}
	}
	if st == vc.Status {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	updated := vc.DeepCopy()
	updated.Status = st
	if err := r.Client.Status().Update(ctx, updated); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{RequeueAfter: retrySoon}, nil
		}
		return ctrl.Result{}, fmt.Errorf("recording state of virtual cluster %s: %w", vc.Name, err)
	}
	ctrl.LoggerFrom(ctx).Info("virtual cluster state", "state", st.State, "details", st.StateDetails)
	return ctrl.Result{RequeueAfter: wait}, nil
}

func (r *VirtualClusterReconciler) activeRuns(ctx context.Context, vc *v1alpha1.VirtualCluster) (int, error) {
	var runs v1alpha1.JobRunList
	if err := r.Client.List(ctx, &runs, client.InNamespace(vc.Namespace), client.MatchingLabels{submit.LabelVirtualClusterID: vc.Name}); err != nil {
		return 0, err
	}
	n := 0
	for i := range runs.Items {
		if !runs.Items[i].CurrentState().Terminal() {
			n++
		}
	}
	return n, nil
}
