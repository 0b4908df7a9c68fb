package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Virtual-cluster states of emr-containers.
const (
	VirtualClusterRunning     = "RUNNING"
	VirtualClusterTerminating = "TERMINATING"
	VirtualClusterTerminated  = "TERMINATED"
	VirtualClusterArrested    = "ARRESTED"
)

// LabelVirtualClustersAllowed is the namespace label with which the platform team opens a namespace to
// virtual clusters; a namespace without LabelVirtualClustersAllowed=true cannot back one.
const LabelVirtualClustersAllowed = "sparkplace.io/virtual-clusters"

// VirtualClusterSpec is a virtual cluster: the namespace it lives in, and what its job runs may use.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.terminate) || !oldSelf.terminate || (has(self.terminate) && self.terminate)",message="a terminated virtual cluster stays terminated"
type VirtualClusterSpec struct {
	// Name is the emr-containers name.
	// +kubebuilder:validation:Pattern=`^[.\-_/#A-Za-z0-9]{1,64}$`
	Name string `json:"name"`
	// ContainerProviderID is the emr-containers containerProvider.id (EMR: the EKS cluster's name).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ContainerProviderID string `json:"containerProviderId,omitempty"`
	// Tags are the virtual cluster's AWS-style tags.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// Terminate marks the virtual cluster for termination (DeleteVirtualCluster); runs are kept as history.
	// +optional
	Terminate bool `json:"terminate,omitempty"`
	// Policy limits what job runs of this virtual cluster may use.
	// +optional
	Policy VirtualClusterPolicy `json:"policy,omitempty"`
}

// VirtualClusterPolicy is what job runs of a virtual cluster may use. A run asking for anything else is
// refused, with the rule named. Only those who may edit the VirtualCluster (the platform team) set it.
type VirtualClusterPolicy struct {
	// AllowedImages are image patterns ("*" matches any characters, e.g. "123456789012.dkr.ecr.*/spark/*").
	// Defaults to none: only the image the releaseLabel resolves to.
	// +optional
	AllowedImages []string `json:"allowedImages,omitempty"`
	// AllowedExecutionRoles are IAM role ARN patterns ("*" as above). Defaults to none: any role.
	// +optional
	AllowedExecutionRoles []string `json:"allowedExecutionRoles,omitempty"`
	// AllowedVolumeTypes are the spark.kubernetes.*.volumes.<type> a run may mount. Defaults to emptyDir and
	// persistentVolumeClaim (no hostPath or nfs).
	// +optional
	AllowedVolumeTypes []string `json:"allowedVolumeTypes,omitempty"`
	// AllowedServiceAccounts are service accounts a run may name with
	// spark.kubernetes.authenticate.driver.serviceAccountName. Defaults to none: runs use the virtual
	// cluster's own driver service account for their execution role.
	// +optional
	AllowedServiceAccounts []string `json:"allowedServiceAccounts,omitempty"`
}

// VirtualClusterStatus is what the controller observed.
type VirtualClusterStatus struct {
	// State is RUNNING, TERMINATING, TERMINATED or ARRESTED (the namespace may not back a virtual cluster).
	// +optional
	State string `json:"state,omitempty"`
	// StateDetails says why a virtual cluster is ARRESTED.
	// +optional
	StateDetails string `json:"stateDetails,omitempty"`
}

// VirtualCluster is an emr-containers virtual cluster: a namespace opened to Spark job runs. Its name is the
// virtual cluster's id.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vc,categories=sparkplace
// +kubebuilder:printcolumn:name="Name",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Details",type=string,JSONPath=`.status.stateDetails`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualClusterSpec   `json:"spec"`
	Status VirtualClusterStatus `json:"status,omitempty"`
}

// VirtualClusterList is a list of VirtualClusters.
// +kubebuilder:object:root=true
type VirtualClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualCluster `json:"items"`
}
