package sparksim

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sparkplace/sparkplace/submit/podtemplate"
)

// UseExecutorTemplate makes the app's executors start from the pod template the running driver reads, as
// Spark's ExecutorPodsAllocator does (KubernetesExecutorBuilder): it reads the driver's spark.properties and,
// when spark.kubernetes.executor.podTemplateFile names a file in a ConfigMap volume the driver's container
// mounts, that ConfigMap, through the API (the simulated driver has no file system). It reports whether the
// driver has a template; a template that is not a Pod fails, as it fails Spark's driver.
func (a *App) UseExecutorTemplate(ctx context.Context, c kubernetes.Interface, driver *corev1.Pod) (bool, error) {
	spark := SparkContainer(driver)
	if spark == nil {
		return false, fmt.Errorf("driver %s has no containers", driver.Name)
	}
	propsFile, err := readMounted(ctx, c, driver, spark, "/opt/spark/conf/spark.properties")
	if err != nil {
		return false, fmt.Errorf("reading the driver's spark.properties: %w", err)
	}
	props := parseProperties(propsFile)
	file := props["spark.kubernetes.executor.podTemplateFile"]
	if file == "" {
		return false, nil
	}
	data, err := readMounted(ctx, c, driver, spark, file)
	if err != nil {
		return false, fmt.Errorf("spark.kubernetes.executor.podTemplateFile=%s: %w", file, err)
	}
	template, err := podtemplate.Parse(data)
	if err != nil {
		return false, fmt.Errorf("spark.kubernetes.executor.podTemplateFile=%s: %w", file, err)
	}
	a.ExecutorTemplate, a.ExecutorTemplateContainer = template, props["spark.kubernetes.executor.podTemplateContainerName"]
	return true, nil
}

// readMounted reads the file at path of container's ConfigMap-backed mounts.
func readMounted(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod, container *corev1.Container, file string) ([]byte, error) {
	for _, m := range container.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			key := rel
			for _, item := range v.ConfigMap.Items {
				if path.Clean(item.Path) == rel {
					key = item.Key
				}
			}
			cm, err := c.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			data, ok := cm.Data[key]
			if !ok {
				return nil, fmt.Errorf("ConfigMap %s has no key %s", cm.Name, key)
			}
			return []byte(data), nil
		}
	}
	return nil, fmt.Errorf("%s is in no ConfigMap the driver's container mounts", file)
}

// parseProperties reads a java.util.Properties file as spark-submit writes it: key=value lines, # comments,
// backslash escapes.
func parseProperties(data []byte) map[string]string {
	props := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		key, value := line, ""
		for i := 0; i < len(line); i++ {
			if line[i] == '\\' {
				i++
				continue
			}
			if line[i] == '=' || line[i] == ':' {
				key, value = line[:i], line[i+1:]
				break
			}
		}
		props[unescape(strings.TrimSpace(key))] = unescape(strings.TrimSpace(value))
	}
	return props
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+4 < len(s) {
				if r, err := strconv.ParseUint(s[i+1:i+5], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += 4
					continue
				}
			}
			b.WriteByte('u')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// onTemplate builds the executor on the template the driver read, as Spark's feature steps do.
func (a *App) onTemplate(built *corev1.Pod) *corev1.Pod {
	return podtemplate.Build(a.ExecutorTemplate, a.ExecutorTemplateContainer, built)
}
