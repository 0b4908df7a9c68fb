package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Template parameter types of emr-containers.
const (
	TemplateParameterString = "STRING"
	TemplateParameterNumber = "NUMBER"
)

// TemplateParameterConfiguration declares one ${parameter} of a job template.
type TemplateParameterConfiguration struct {
	// Type is STRING (the default) or NUMBER.
	// +optional
	// +kubebuilder:validation:Enum=STRING;NUMBER
	Type string `json:"type,omitempty"`
	// DefaultValue is used when StartJobRun does not give the parameter.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	DefaultValue *string `json:"defaultValue,omitempty"`
}

// JobTemplateData is the part of a StartJobRun request a template fixes; string values may hold ${parameter}
// placeholders that StartJobRun's jobTemplateParameters fill.
type JobTemplateData struct {
	ExecutionRoleARN string    `json:"executionRoleArn"`
	ReleaseLabel     string    `json:"releaseLabel"`
	JobDriver        JobDriver `json:"jobDriver"`
	// +optional
	ConfigurationOverrides *ConfigurationOverrides `json:"configurationOverrides,omitempty"`
	// +optional
	ParameterConfiguration map[string]TemplateParameterConfiguration `json:"parameterConfiguration,omitempty"`
	// JobTags are added to the tags of every run started from the template.
	// +optional
	JobTags map[string]string `json:"jobTags,omitempty"`
}

// JobTemplateSpec is an emr-containers job template. Only its tags change: a template is replaced, not edited.
type JobTemplateSpec struct {
	// +kubebuilder:validation:Pattern=`^[.\-_/#A-Za-z0-9]{1,64}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a job template's name is immutable"
	Name string `json:"name"`
	// +optional
	ClientToken string `json:"clientToken,omitempty"`
	// +optional
	CreatedBy string `json:"createdBy,omitempty"`
	// +optional
	KMSKeyARN string `json:"kmsKeyArn,omitempty"`
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// JobTemplateData is immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a job template's data is immutable"
	JobTemplateData JobTemplateData `json:"jobTemplateData"`
}

// JobTemplate is an emr-containers job template, shared by every virtual cluster like EMR's account-wide
// templates. Its name is the template's id.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=jt,categories=sparkplace
// +kubebuilder:printcolumn:name="Name",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="Release",type=string,JSONPath=`.spec.jobTemplateData.releaseLabel`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type JobTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec JobTemplateSpec `json:"spec"`
}

// JobTemplateList is a list of JobTemplates.
// +kubebuilder:object:root=true
type JobTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []JobTemplate `json:"items"`
}
