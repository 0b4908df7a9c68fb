package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// processCPU is the CPU time (user + system, all threads) process pid has used, from /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	// "pid (comm) state ppid ...": comm may hold spaces, so count fields from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time of %d: malformed stat %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	// Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the state field.
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time of %d: short stat %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu time of %d: malformed stat %q", pid, b)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// Resident is a process's resident memory: RSS, its anonymous (heap, stacks) and file-backed (the
// executable's pages) parts, and the highest RSS it ever had (Peak).
type Resident struct{ RSS, Anon, File, Peak int64 }

// processResident reads the resident memory of process pid from /proc/PID/status.
func processResident(pid int) (Resident, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Resident{}, fmt.Errorf("rss of %d: %w", pid, err)
	}
	defer f.Close()
	var r Resident
	fields := map[string]*int64{"VmRSS:": &r.RSS, "RssAnon:": &r.Anon, "RssFile:": &r.File, "VmHWM:": &r.Peak}
	found := 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, _ := strings.Cut(s.Text(), "\t")
		dst, ok := fields[name]
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return r, fmt.Errorf("rss of %d: %s %q: %w", pid, name, rest, err)
		}
		*dst = kb << 10
		found++
	}
	if found < len(fields) {
		return r, fmt.Errorf("rss of %d: /proc/%d/status lacks VmRSS, VmHWM, RssAnon or RssFile", pid, pid)
	}
	return r, nil
}

// machineCPU is the CPU time all cores have spent busy (not idle or waiting on I/O) since boot, from /proc/stat.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("machine cpu: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("machine cpu: malformed /proc/stat line %q", line)
	}
	var busy int64
	// user nice system idle iowait irq softirq steal ...: all but idle (4th) and iowait (5th).
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("machine cpu: %q: %w", line, err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// loadAverage is the 1-minute load average, from /proc/loadavg.
func loadAverage() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("malformed /proc/loadavg %q", b)
	}
	return strconv.ParseFloat(f[0], 64)
}

// childrenCPU is the CPU time each child process of the run (the control plane, kwok, the webhooks) has used,
// by its name (a process gone meanwhile counts nothing).
func (e *Env) childrenCPU() map[string]time.Duration {
	cpu := map[string]time.Duration{}
	for _, p := range e.CP.Processes() {
		if c, err := processCPU(p.Pid()); err == nil {
			cpu[p.Name] += c
		}
	}
	return cpu
}
