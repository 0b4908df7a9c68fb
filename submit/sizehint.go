package submit

import (
	"strconv"
	"strings"
)

// The driver annotations that tell sparkplace's webhook how big the job's executors are, so it can steer the
// driver to the zone where they fit (see README "Zone choice"). spark-submit users set the same through
// spark.kubernetes.driver.annotation.*; a value the user set is kept.
const (
	AnnotationExecutors      = "sparkplace.io/executors"
	AnnotationExecutorCPU    = "sparkplace.io/executor-cpu"
	AnnotationExecutorMemory = "sparkplace.io/executor-memory"
)

// sizeHint returns the size-hint annotations from spark.executor.*, as Spark sizes executor pods: the
// initial executor count (dynamic allocation: the largest of min, initial and instances, as Spark's
// getDynamicAllocationInitialExecutors; else spark.executor.instances, default 2), the CPU request
// (spark.kubernetes.executor.request.cores, else spark.executor.cores, default 1) and the memory request
// (memory + overhead + PySpark memory, in MiB; overhead max(factor × memory, 384 MiB), factor 0.1 unless set).
func sizeHint(props map[string]string) (map[string]string, error) {
	count := func(key string, def int64) (int64, error) {
		v, ok := props[key]
		if !ok {
			return def, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, invalidf("%s=%q must be a whole number of executors", key, v)
		}
		return n, nil
	}
	executors, err := count("spark.executor.instances", 2)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(strings.TrimSpace(props["spark.dynamicAllocation.enabled"]), "true") {
		instances, err := count("spark.executor.instances", 0)
		if err != nil {
			return nil, err
		}
		executors = instances
		for _, key := range []string{"spark.dynamicAllocation.minExecutors", "spark.dynamicAllocation.initialExecutors"} {
			n, err := count(key, 0)
			if err != nil {
				return nil, err
			}
			executors = max(executors, n)
		}
	}
	cpu := "1"
	for _, key := range []string{"spark.kubernetes.executor.request.cores", "spark.executor.cores"} {
		if v := strings.TrimSpace(props[key]); v != "" {
			cpu = v
			break
		}
	}
	memMiB, err := mibOr(props, "spark.executor.memory", 1024)
	if err != nil {
		return nil, err
	}
	factor := 0.1
	for _, key := range []string{"spark.executor.memoryOverheadFactor", "spark.kubernetes.memoryOverheadFactor"} {
		if v, ok := props[key]; ok {
			if factor, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || factor <= 0 {
				return nil, invalidf("%s=%q must be a positive number", key, v)
			}
			break
		}
	}
	overhead := max(int64(factor*float64(memMiB)), minOverheadMiB)
	if _, ok := props["spark.executor.memoryOverhead"]; ok {
		if overhead, err = mibOr(props, "spark.executor.memoryOverhead", 0); err != nil {
			return nil, err
		}
	}
	pyspark, err := mibOr(props, "spark.executor.pyspark.memory", 0)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		AnnotationExecutors:      strconv.FormatInt(executors, 10),
		AnnotationExecutorCPU:    cpu,
		AnnotationExecutorMemory: strconv.FormatInt(memMiB+overhead+pyspark, 10) + "Mi",
	}, nil
}

func mibOr(props map[string]string, key string, def int64) (int64, error) {
	v, ok := props[key]
	if !ok {
		return def, nil
	}
	return parseMiB(key, v)
}
