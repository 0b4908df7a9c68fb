package submit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// knownClassifications are the classifications EMR on EKS accepts; the value says whether sparkplace
// applies it.
var knownClassifications = map[string]bool{
	"spark-defaults":          true,
	"spark-env":               true,
	"spark-log4j":             true,
	"spark-log4j2":            true,
	"emr-containers-defaults": true,
	"emr-job-submitter":       false,
	"spark-hive-site":         false,
}

// collectProperties merges spark-defaults < --conf < dedicated options, as spark-submit merges
// spark-defaults.conf, --conf and --driver-memory & co.
func (b *builder) collectProperties() error {
	if co := b.req.ConfigurationOverrides; co != nil {
		if err := b.applyMonitoring(co.MonitoringConfiguration); err != nil {
			return err
		}
		for i, c := range co.ApplicationConfiguration {
			if err := b.applyClassification(fmt.Sprintf("configurationOverrides.applicationConfiguration[%d]", i), c); err != nil {
				return err
			}
		}
	}
	sub, err := parseSubmitParameters(b.driver.SparkSubmitParameters)
	if err != nil {
		return err
	}
	for _, kv := range sub.conf {
		b.setProperty("--conf", kv.key, kv.value)
	}
	for k, v := range sub.options {
		b.props[k] = v
	}
	b.mainClass = sub.mainClass
	return nil
}

func (b *builder) setProperty(source, key, value string) {
	if !strings.HasPrefix(key, "spark.") {
		// SparkSubmitArguments.ignoreNonSparkProperties: warn and drop.
		b.warnings = append(b.warnings, fmt.Sprintf("%s: ignoring non-Spark config property %q", source, key))
		return
	}
	b.props[key] = value
}

func (b *builder) applyClassification(where string, c Configuration) error {
	applied, known := knownClassifications[c.Classification]
	if !known {
		names := make([]string, 0, len(knownClassifications))
		for n := range knownClassifications {
			names = append(names, n)
		}
		sort.Strings(names)
		return invalidf("%s: unknown classification %q (known: %s)", where, c.Classification, strings.Join(names, ", "))
	}
	if !applied {
		b.warnings = append(b.warnings, fmt.Sprintf("%s: classification %q is accepted but not applied by sparkplace", where, c.Classification))
		return nil
	}
	if c.Classification != "spark-env" && len(c.Configurations) > 0 {
		return invalidf("%s: classification %q takes properties, not nested configurations", where, c.Classification)
	}
	switch c.Classification {
	case "spark-defaults":
		for _, k := range sortedKeys(c.Properties) {
			b.setProperty(where+" spark-defaults", k, c.Properties[k])
		}
	case "spark-env":
		// EMR's shape: {"classification": "spark-env", "configurations": [{"classification": "export",
		// "properties": {"PYSPARK_PYTHON": "python3"}}]}: environment for the driver and the executors.
		if len(c.Properties) > 0 {
			return invalidf("%s: spark-env takes its variables in a nested \"export\" configuration", where)
		}
		for j, nested := range c.Configurations {
			if nested.Classification != "export" {
				return invalidf("%s.configurations[%d]: spark-env only nests the \"export\" classification, not %q", where, j, nested.Classification)
			}
			for _, k := range sortedKeys(nested.Properties) {
				if !validEnvName(k) {
					return invalidf("%s.configurations[%d]: %q is not an environment variable name", where, j, k)
				}
				b.props["spark.kubernetes.driverEnv."+k] = nested.Properties[k]
				b.props["spark.executorEnv."+k] = nested.Properties[k]
			}
		}
	case "spark-log4j", "spark-log4j2":
		file := "log4j.properties"
		if c.Classification == "spark-log4j2" {
			file = "log4j2.properties"
		}
		if b.log4j == nil {
			b.log4j = map[string]string{}
		}
		b.log4j[file] = javaPropertiesBody(c.Properties)
	case "emr-containers-defaults":
		for _, k := range sortedKeys(c.Properties) {
			if k != "job-start-timeout" {
				b.warnings = append(b.warnings, fmt.Sprintf("%s: emr-containers-defaults %q is not applied", where, k))
				continue
			}
			secs, err := strconv.Atoi(c.Properties[k])
			if err != nil || secs <= 0 {
				return invalidf("%s: job-start-timeout %q must be a positive number of seconds", where, c.Properties[k])
			}
			b.timeout = time.Duration(secs) * time.Second
		}
	}
	return nil
}

// applyMonitoring maps monitoringConfiguration to what open-source Spark has: S3 event logs, which a Spark
// History Server reads (EMR's persistent application UI is that). The rest is refused or reported.
func (b *builder) applyMonitoring(m *MonitoringConfiguration) error {
	if m == nil {
		return nil
	}
	const where = "configurationOverrides.monitoringConfiguration"
	if m.CloudWatchMonitoringConfiguration != nil {
		return invalidf("%s.cloudWatchMonitoringConfiguration: CloudWatch logging is not available in this cluster; drop it, or ship pod logs with the cluster's log agent", where)
	}
	if m.PersistentAppUI != "" && m.PersistentAppUI != "ENABLED" && m.PersistentAppUI != "DISABLED" {
		return invalidf("%s.persistentAppUI %q must be ENABLED or DISABLED", where, m.PersistentAppUI)
	}
	if s3 := m.S3MonitoringConfiguration; s3 != nil {
		uri := strings.TrimSpace(s3.LogURI)
		rest, ok := strings.CutPrefix(uri, "s3://")
		if !ok {
			rest, ok = strings.CutPrefix(uri, "s3a://")
		}
		if !ok || rest == "" {
			return invalidf("%s.s3MonitoringConfiguration.logUri %q must be an s3:// URI", where, s3.LogURI)
		}
		// Event logs under the run's own prefix, through Hadoop's S3A file system (the scheme open-source
		// Spark reads); a History Server pointed at the same URI shows the run.
		if _, set := b.props["spark.eventLog.dir"]; !set {
			b.props["spark.eventLog.enabled"] = "true"
			b.props["spark.eventLog.dir"] = "s3a://" + strings.TrimSuffix(rest, "/") + "/" + b.target.JobRunID + "/sparklogs/"
		}
	} else if m.PersistentAppUI == "ENABLED" {
		b.warnings = append(b.warnings, where+".persistentAppUI: without s3MonitoringConfiguration.logUri there are no event logs for a History Server to show")
	}
	if m.ContainerLogRotationConfiguration != nil {
		b.warnings = append(b.warnings, where+".containerLogRotationConfiguration is not applied: the kubelet rotates container logs")
	}
	return nil
}
