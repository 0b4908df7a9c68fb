package v1alpha1

// JobRunRequest is the body of emr-containers StartJobRun, field for field, so the JSON users already have
// (CLI --cli-input-json, boto3, Airflow's EmrContainerOperator) is accepted unchanged.
type JobRunRequest struct {
	// Name of the job run, 1-64 characters.
	// +optional
	Name string `json:"name,omitempty"`
	// VirtualClusterID is the virtual cluster the run belongs to.
	// +optional
	VirtualClusterID string `json:"virtualClusterId,omitempty"`
	// ClientToken makes StartJobRun idempotent: the same token returns the same run.
	// +optional
	ClientToken string `json:"clientToken,omitempty"`
	// ExecutionRoleARN is the IAM role the driver and executors run as (IRSA on their ServiceAccount).
	// +optional
	ExecutionRoleARN string `json:"executionRoleArn,omitempty"`
	// ReleaseLabel picks the Spark image, e.g. emr-7.6.0-latest or spark-3.5.3.
	// +optional
	ReleaseLabel string `json:"releaseLabel,omitempty"`
	// JobDriver says what to run.
	// +optional
	JobDriver *JobDriver `json:"jobDriver,omitempty"`
	// ConfigurationOverrides carries the classifications (spark-defaults & co.) and monitoring settings.
	// +optional
	ConfigurationOverrides *ConfigurationOverrides `json:"configurationOverrides,omitempty"`
	// RetryPolicyConfiguration asks for retries of a failed driver.
	// +optional
	RetryPolicyConfiguration *RetryPolicyConfiguration `json:"retryPolicyConfiguration,omitempty"`
	// JobTemplateID names a job template to start from.
	// +optional
	JobTemplateID string `json:"jobTemplateId,omitempty"`
	// JobTemplateParameters fill the template's ${placeholders}.
	// +optional
	JobTemplateParameters map[string]string `json:"jobTemplateParameters,omitempty"`
	// Tags are the run's AWS-style tags.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
}

// JobDriver holds exactly one driver kind, as in the API.
type JobDriver struct {
	// +optional
	SparkSubmitJobDriver *SparkSubmitJobDriver `json:"sparkSubmitJobDriver,omitempty"`
	// +optional
	SparkSQLJobDriver *SparkSQLJobDriver `json:"sparkSqlJobDriver,omitempty"`
}

// SparkSubmitJobDriver is what spark-submit gets: the application resource, its arguments and the options.
type SparkSubmitJobDriver struct {
	// EntryPoint is the application: a JAR, .py or .R file.
	EntryPoint string `json:"entryPoint"`
	// +optional
	EntryPointArguments []string `json:"entryPointArguments,omitempty"`
	// SparkSubmitParameters are spark-submit options (--conf k=v, --class, --driver-memory, ...).
	// +optional
	SparkSubmitParameters string `json:"sparkSubmitParameters,omitempty"`
}

// SparkSQLJobDriver runs a Spark SQL file.
type SparkSQLJobDriver struct {
	// +optional
	EntryPoint string `json:"entryPoint,omitempty"`
	// +optional
	SparkSQLParameters string `json:"sparkSqlParameters,omitempty"`
}

// ConfigurationOverrides carries the classifications and the monitoring settings.
type ConfigurationOverrides struct {
	// +optional
	ApplicationConfiguration []Configuration `json:"applicationConfiguration,omitempty"`
	// +optional
	MonitoringConfiguration *MonitoringConfiguration `json:"monitoringConfiguration,omitempty"`
}

// Configuration is one classification block; nested configurations are used by spark-env's "export".
type Configuration struct {
	Classification string `json:"classification"`
	// +optional
	Properties map[string]string `json:"properties,omitempty"`
	// +optional
	Configurations []NestedConfiguration `json:"configurations,omitempty"`
}

// NestedConfiguration is a classification inside another one (EMR nests one level: spark-env's "export").
type NestedConfiguration struct {
	Classification string `json:"classification"`
	// +optional
	Properties map[string]string `json:"properties,omitempty"`
}

// MonitoringConfiguration is where EMR sends logs and the Spark UI's event logs.
type MonitoringConfiguration struct {
	// PersistentAppUI is ENABLED or DISABLED.
	// +optional
	PersistentAppUI string `json:"persistentAppUI,omitempty"`
	// +optional
	CloudWatchMonitoringConfiguration *CloudWatchMonitoringConfiguration `json:"cloudWatchMonitoringConfiguration,omitempty"`
	// +optional
	S3MonitoringConfiguration *S3MonitoringConfiguration `json:"s3MonitoringConfiguration,omitempty"`
	// +optional
	ContainerLogRotationConfiguration *ContainerLogRotationConfiguration `json:"containerLogRotationConfiguration,omitempty"`
}

// CloudWatchMonitoringConfiguration sends container logs to CloudWatch Logs.
type CloudWatchMonitoringConfiguration struct {
	LogGroupName string `json:"logGroupName"`
	// +optional
	LogStreamNamePrefix string `json:"logStreamNamePrefix,omitempty"`
}

// S3MonitoringConfiguration sends logs to S3.
type S3MonitoringConfiguration struct {
	LogURI string `json:"logUri"`
}

// ContainerLogRotationConfiguration rotates container logs.
type ContainerLogRotationConfiguration struct {
	RotationSize   string `json:"rotationSize"`
	MaxFilesToKeep int32  `json:"maxFilesToKeep"`
}

// RetryPolicyConfiguration is how often a failed driver is attempted.
type RetryPolicyConfiguration struct {
	MaxAttempts int32 `json:"maxAttempts"`
}
