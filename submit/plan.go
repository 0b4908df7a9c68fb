package submit

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// Constants of Spark's Kubernetes resource manager (Constants.scala, Config.scala).
const (
	sparkMaster            = "k8s://https://kubernetes.default.svc"
	sparkConfDir           = "/opt/spark/conf"
	sparkPropertiesFile    = "spark.properties"
	sparkConfVolume        = "spark-conf-volume-driver"
	driverContainerName    = "spark-kubernetes-driver"
	defaultDriverPort      = 7078
	defaultBlockManagerPrt = 7079
	defaultUIPort          = 4040
	minOverheadMiB         = 384
	jvmOverheadFactor      = 0.1
	nonJVMOverheadFactor   = 0.4
	pythonRunner           = "org.apache.spark.deploy.PythonRunner"
	sparkSQLDriver         = "org.apache.spark.sql.hive.thriftserver.SparkSQLCLIDriver"
	sparkInternal          = "spark-internal" // SparkLauncher.NO_RESOURCE: the main class is in Spark itself
	maxAttempts            = 10               // the service's bound on retryPolicyConfiguration.maxAttempts
	rRunner                = "org.apache.spark.deploy.RRunner"
	defaultJobStartTimeout = 15 * time.Minute
)

// Target says where a planned job run goes.
type Target struct {
	// Namespace of the virtual cluster.
	Namespace string
	// VirtualClusterID is the id registered on Namespace ("" in a dry run without a virtual cluster).
	VirtualClusterID string
	// JobRunID is the job run's id ([0-9a-z]+); it names the driver pod spark-<id>-driver, as EMR does.
	JobRunID string
	// ClientToken is stored with the run for idempotency.
	ClientToken string
	// Policy is the virtual cluster's: what the run may use. Nil in a dry run without a virtual cluster.
	Policy *v1alpha1.VirtualClusterPolicy
	// Attempt is the attempt of a retried run (retryPolicyConfiguration); 0 and 1 are the first.
	Attempt int32
}

// PlanOptions are the settings a plan depends on besides the request. The controller plans a run again
// each time it reconciles it, so everything here must be the same each time for the same run.
type PlanOptions struct {
	// Releases resolves releaseLabel to an image.
	Releases ReleaseTable
	// Now is the submission time (spark.app.submitTime, createdAt).
	Now time.Time
	// Random supplies the app id and the default local-dir names. Required.
	Random io.Reader
	// Region and AccountID form the job run's ARN. Default to us-east-1 and 000000000000.
	Region    string
	AccountID string
	// SparkUser is the driver's SPARK_USER (spark-submit uses the submitting OS user). Defaults to "spark".
	SparkUser string
	// CreatedBy is recorded on the job run (EMR: the caller's ARN). Optional.
	CreatedBy string
	// PodTemplates are the fetched contents of the request's pod template files (the submitter fetches them,
	// the controller reads them from the JobRun). Required when the request names a template.
	PodTemplates *v1alpha1.PodTemplates
}

// Plan is every object a job run needs, in creation order, before anything is created: the JobRun the
// submitter creates, then what the controller creates for it.
type Plan struct {
	// JobRun is the run's API object (the submitter creates it with the caller's credentials).
	JobRun *v1alpha1.JobRun
	// ServiceAccount is the driver's: the virtual cluster's for the execution role, created once per
	// virtual cluster and role by the controller, or one the policy allows the run to name.
	ServiceAccount string
	// CreateServiceAccount is true when ServiceAccount is the virtual cluster's own, which the controller
	// creates (with its RoleBinding) when missing.
	CreateServiceAccount bool
	DriverPod            *corev1.Pod
	// ConfigMap (the driver's spark.properties) and Service are owned by DriverPod; their owner reference
	// gets the pod's uid once the pod exists.
	ConfigMap *corev1.ConfigMap
	Service   *corev1.Service
	// PodTemplateConfigMap holds the executor pod template the driver reads (spark-submit's
	// <prefix>-driver-podspec-conf-map), owned by DriverPod too. Nil without an executor template.
	PodTemplateConfigMap *corev1.ConfigMap
	// StartTimeout is how long the driver may take to start (emr-containers-defaults job-start-timeout).
	StartTimeout time.Duration
	// SparkProperties is what the driver reads from spark.properties.
	SparkProperties map[string]string
	// Warnings are parts of the request sparkplace accepts but does not apply.
	Warnings []string
}

// Objects returns the planned objects in creation order.
func (p *Plan) Objects() []client.Object {
	objs := []client.Object{p.JobRun, p.DriverPod, p.ConfigMap, p.Service}
	if p.PodTemplateConfigMap != nil {
		objs = append(objs, p.PodTemplateConfigMap)
	}
	return objs
}

var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/(?:[\w+=,.@/-]+/)?([\w+=,.@-]{1,64})$`)

// NewPlan validates req and computes every object of the job run. It creates nothing and has no
// side effects, so a *ValidationError from here means nothing was touched.
func NewPlan(req *StartJobRunRequest, target Target, opts PlanOptions) (*Plan, error) {
	if opts.Random == nil {
		return nil, fmt.Errorf("plan options: Random is required")
	}
	driver, err := validateRequest(req)
	if err != nil {
		return nil, err
	}
	b := &builder{req: req, driver: driver, target: target, opts: opts, props: map[string]string{}}
	if err := b.collectProperties(); err != nil {
		return nil, err
	}
	if err := b.resolve(); err != nil {
		return nil, err
	}
	if err := b.parsePodTemplates(); err != nil {
		return nil, err
	}
	if err := b.checkPolicy(); err != nil {
		return nil, err
	}
	return b.build()
}

func validateRequest(req *StartJobRunRequest) (*SparkSubmitJobDriver, error) {
	switch {
	case req == nil:
		return nil, invalidf("empty StartJobRun request")
	case req.JobTemplateID != "" && req.JobDriver == nil:
		return nil, invalidf("jobTemplateId %s: the template is applied by StartJobRun against the cluster, not in a dry run", req.JobTemplateID)
	case req.JobDriver == nil:
		return nil, invalidf("jobDriver is required")
	case req.JobDriver.SparkSQLJobDriver != nil && req.JobDriver.SparkSubmitJobDriver != nil:
		return nil, invalidf("jobDriver: give either sparkSubmitJobDriver or sparkSqlJobDriver, not both")
	case req.JobDriver.SparkSQLJobDriver != nil:
		sql := req.JobDriver.SparkSQLJobDriver
		if strings.TrimSpace(sql.EntryPoint) == "" {
			return nil, invalidf("jobDriver.sparkSqlJobDriver.entryPoint is required (the .sql file)")
		}
		// EMR runs the file with Spark's SQL command line driver; its parameters are spark-submit options.
		return &SparkSubmitJobDriver{
			EntryPoint: sparkInternal, EntryPointArguments: []string{"-f", strings.TrimSpace(sql.EntryPoint)},
			SparkSubmitParameters: sql.SparkSQLParameters,
		}, nil
	case req.JobDriver.SparkSubmitJobDriver == nil:
		return nil, invalidf("jobDriver.sparkSubmitJobDriver or jobDriver.sparkSqlJobDriver is required")
	case strings.TrimSpace(req.JobDriver.SparkSubmitJobDriver.EntryPoint) == "":
		return nil, invalidf("jobDriver.sparkSubmitJobDriver.entryPoint is required (the application jar, .py or .R file)")
	case req.ExecutionRoleARN == "":
		return nil, invalidf("executionRoleArn is required")
	case !roleARNPattern.MatchString(req.ExecutionRoleARN):
		return nil, invalidf("executionRoleArn %q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)", req.ExecutionRoleARN)
	case req.ReleaseLabel == "":
		return nil, invalidf("releaseLabel is required")
	case len(req.Name) > 64:
		return nil, invalidf("name is longer than 64 characters")
	case len(req.ReleaseLabel) > maxLabelLength:
		return nil, invalidf("releaseLabel is longer than %d characters", maxLabelLength)
	case len(req.JobDriver.SparkSubmitJobDriver.EntryPoint) > maxEntryPoint:
		return nil, invalidf("jobDriver.sparkSubmitJobDriver.entryPoint is longer than %d characters", maxEntryPoint)
	case checkTags(req.Tags) != nil:
		return nil, checkTags(req.Tags)
	case req.RetryPolicyConfiguration != nil && (req.RetryPolicyConfiguration.MaxAttempts < 1 || req.RetryPolicyConfiguration.MaxAttempts > maxAttempts):
		return nil, invalidf("retryPolicyConfiguration.maxAttempts %d must be from 1 to %d", req.RetryPolicyConfiguration.MaxAttempts, maxAttempts)
	}
	return req.JobDriver.SparkSubmitJobDriver, nil
}

// builder carries one plan's intermediate results.
type builder struct {
	req    *StartJobRunRequest
	driver *SparkSubmitJobDriver
	target Target
	opts   PlanOptions

	props     map[string]string // the Spark properties, merged with spark-submit's precedence
	log4j     map[string]string // ConfigMap key (log4j.properties / log4j2.properties) → content
	mainClass string
	resource  string // the application resource as the driver gets it
	kind      string // java, python or r
	release   Release
	// releaseImage is the release table's image for releaseLabel ("" when the label is unknown).
	releaseImage string
	timeout      time.Duration
	warnings     []string

	appID         string
	podName       string
	serviceName   string
	configMapName string
	// podTemplates are the parsed pod templates by role; podTemplateConfigMapName holds the executor's.
	podTemplates             map[string]*corev1.Pod
	podTemplateConfigMapName string
	serviceAccount           string
	ownAccount               bool
	driverMiB                int64
	overheadMiB              int64
	overheadFactor           float64
}
