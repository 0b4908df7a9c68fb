package submit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// resolve decides the application kind, main class, name, image, names and sizes.
func (b *builder) resolve() error {
	entry := strings.TrimSpace(b.driver.EntryPoint)
	switch ext := strings.ToLower(path.Ext(entry)); {
	case entry == sparkInternal:
		if b.mainClass != "" {
			return invalidf("sparkSqlParameters: --class is not accepted: Spark SQL files run with %s", sparkSQLDriver)
		}
		b.kind, b.mainClass = "java", sparkSQLDriver
	case ext == ".py":
		b.kind, b.mainClass = "python", pythonRunner
	case ext == ".r":
		b.kind, b.mainClass = "r", rRunner
	default:
		b.kind = "java"
		if b.mainClass == "" {
			return invalidf("sparkSubmitParameters: --class is required for %s (spark-submit cannot read the main class from a remote JAR)", entry)
		}
		// SparkSubmit adds the primary JAR to spark.jars so executors get it.
		b.props["spark.jars"] = joinList(b.props["spark.jars"], entry)
	}
	b.resource = entry

	if b.props["spark.app.name"] == "" {
		switch {
		case b.req.Name != "":
			b.props["spark.app.name"] = b.req.Name
		case b.kind == "java":
			b.props["spark.app.name"] = b.mainClass
		default:
			b.props["spark.app.name"] = path.Base(entry)
		}
	}

	release, relErr := b.opts.Releases.Resolve(b.req.ReleaseLabel)
	image := firstNonEmpty(b.props["spark.kubernetes.driver.container.image"], b.props["spark.kubernetes.container.image"])
	switch {
	case relErr != nil && image == "":
		return relErr
	case relErr != nil:
		b.warnings = append(b.warnings, fmt.Sprintf("releaseLabel %q is not in the release table; using image %s", b.req.ReleaseLabel, image))
	}
	b.release = release
	if relErr == nil {
		b.releaseImage = release.Image
	}
	if image != "" {
		b.release.Image = image
	}
	if b.props["spark.kubernetes.container.image"] == "" {
		b.props["spark.kubernetes.container.image"] = b.release.Image
	}

	for _, key := range []string{"spark.executor.memory", "spark.executor.memoryOverhead", "spark.driver.memoryOverhead"} {
		if v, ok := b.props[key]; ok {
			if _, err := parseMiB(key, v); err != nil {
				return err
			}
		}
	}
	b.driverMiB = 1024
	if v, ok := b.props["spark.driver.memory"]; ok {
		mib, err := parseMiB("spark.driver.memory", v)
		if err != nil {
			return err
		}
		b.driverMiB = mib
	}
	for _, key := range []string{"spark.driver.cores", "spark.executor.cores", "spark.executor.instances", "spark.driver.port", "spark.driver.blockManager.port", "spark.ui.port"} {
		if v, ok := b.props[key]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 0 {
				return invalidf("%s=%q must be a whole number", key, v)
			}
		}
	}
	for _, key := range []string{"spark.kubernetes.driver.request.cores", "spark.kubernetes.driver.limit.cores"} {
		if v, ok := b.props[key]; ok {
			if _, err := resource.ParseQuantity(v); err != nil {
				return invalidf("%s=%q is not a CPU quantity (e.g. 500m, 1, 1.5)", key, v)
			}
		}
	}
	if err := b.resolveOverhead(); err != nil {
		return err
	}

	id := b.target.JobRunID
	appID, err := randomBytes(b.opts.Random, 16)
	if err != nil {
		return err
	}
	b.appID = "spark-" + hex.EncodeToString(appID)
	// Each attempt of a retried run has its own driver objects: later attempts' names carry the number.
	if b.target.Attempt > 1 {
		id = fmt.Sprintf("%s-%d", id, b.target.Attempt)
	}
	prefix := "spark-" + id
	b.podName = firstNonEmpty(b.props["spark.kubernetes.driver.pod.name"], prefix+"-driver")
	if b.target.Attempt > 1 && b.props["spark.kubernetes.driver.pod.name"] != "" {
		b.podName = fmt.Sprintf("%s-%d", b.podName, b.target.Attempt)
	}
	if errs := validation.IsDNS1123Subdomain(b.podName); len(errs) > 0 {
		return invalidf("driver pod name %q: %s", b.podName, strings.Join(errs, "; "))
	}
	// spark-<19-character id>-driver-svc stays well inside the 63 characters of a Service name.
	b.serviceName = prefix + "-driver-svc"
	b.configMapName = "spark-drv-" + id + "-conf-map"
	b.podTemplateConfigMapName = prefix + podTemplateConfigMapSuffix

	if sa := b.props["spark.kubernetes.authenticate.driver.serviceAccountName"]; sa != "" {
		b.serviceAccount = sa
		b.warnings = append(b.warnings, fmt.Sprintf("spark.kubernetes.authenticate.driver.serviceAccountName=%s: the execution role %s is not attached; that service account must already carry it", sa, b.req.ExecutionRoleARN))
	} else {
		b.serviceAccount = ServiceAccountName(b.req.ExecutionRoleARN)
		b.ownAccount = true
		b.props["spark.kubernetes.authenticate.driver.serviceAccountName"] = b.serviceAccount
		if b.props["spark.kubernetes.authenticate.executor.serviceAccountName"] == "" {
			// Executors read the same data as the driver, so they get the same role (EMR does the same).
			b.props["spark.kubernetes.authenticate.executor.serviceAccountName"] = b.serviceAccount
		}
	}
	return nil
}

// resolveOverhead follows BasicDriverFeatureStep: the explicit overhead wins; otherwise
// max(factor × memory, 384 MiB) with factor 0.1, or 0.4 for Python and R unless the user set one.
func (b *builder) resolveOverhead() error {
	factorKey := ""
	for _, k := range []string{"spark.driver.memoryOverheadFactor", "spark.kubernetes.memoryOverheadFactor"} {
		if _, ok := b.props[k]; ok {
			factorKey = k
			break
		}
	}
	switch {
	case factorKey != "":
		f, err := strconv.ParseFloat(strings.TrimSpace(b.props[factorKey]), 64)
		if err != nil || f <= 0 {
			return invalidf("%s=%q must be a positive number", factorKey, b.props[factorKey])
		}
		b.overheadFactor = f
	case b.kind == "java":
		b.overheadFactor = jvmOverheadFactor
	default:
		b.overheadFactor = nonJVMOverheadFactor
	}
	if v, ok := b.props["spark.driver.memoryOverhead"]; ok {
		mib, err := parseMiB("spark.driver.memoryOverhead", v)
		if err != nil {
			return err
		}
		b.overheadMiB = mib
		return nil
	}
	b.overheadMiB = max(int64(b.overheadFactor*float64(b.driverMiB)), minOverheadMiB)
	return nil
}

// ServiceAccountName is the virtual cluster's driver service account for an execution role: one per
// (virtual cluster, execution role), created once, like EMR's emr-containers-sa-spark-*, so IRSA trust
// policies can name system:serviceaccount:<ns>:sparkplace-*.
func ServiceAccountName(roleARN string) string {
	role := roleARNPattern.FindStringSubmatch(roleARN)[1]
	sum := sha256.Sum256([]byte(roleARN))
	name := strings.Trim(dnsLabelSanitizer.ReplaceAllString(strings.ToLower(role), "-"), "-")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	return "sparkplace-" + name + "-" + hex.EncodeToString(sum[:4])
}

var (
	dnsLabelSanitizer = regexp.MustCompile(`[^a-z0-9-]+`)
	notLabelChar      = regexp.MustCompile(`[^a-z0-9-]`)
	dashes            = regexp.MustCompile(`-+`)
)
