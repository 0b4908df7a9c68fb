// Package relax owns bounded strictness. It watches the executors the scheduler cannot place and reports them
// (by reason: zone when they carry a required zone term, capacity when they do not). Once an application's
// executors have waited on a zone pin sparkplace added for longer than the bound they were admitted under
// (their sparkplace.io/zone-strictness label, "bounded-<bound>"), it relaxes the pin: it marks the application
// relaxed (so the policy makes the zone a preference for its next executors, and labels them so every webhook
// replica knows), then deletes the stranded executors. A pod's affinity cannot change; a deleted pending
// executor is one Spark's allocator replaces on its next round (it counts running, pending and newly created
// pods, and a deleted one is none of them; deletion is not an executor failure). A pin without the label is
// the user's own (or another placer's): its replacement would carry it again, so it is never relaxed. A
// webhook sweeps only the namespaces its webhook configuration sends to it.
package relax
