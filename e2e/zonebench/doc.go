// Package zonebench simulates, on a real local control plane, many Spark applications starting at once on a
// fleet whose zones have unequal spot capacity, placed three ways on the same fleet in the same run: by
// sparkplace, by EMR on EKS's recipe (executors' required pod affinity to their driver's zone, nothing choosing
// the driver's zone), and with no zone rule at all; then it plays a spot reclaim of one instance type. `make
// bench-zones` runs it at full scale for the README's table; `go test` (CI) runs it small, asserting only that
// it runs.
package zonebench
