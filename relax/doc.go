// Package relax owns bounded strictness. It watches the executors the scheduler cannot place and reports them
// (by reason: zone when they carry a required zone term, capacity when they do not). In zone.mode bounded,
// once an application's executors have waited on their zone pin longer than zone.bound, it relaxes the pin:
// it marks the application relaxed (so the policy makes the zone a preference for its next executors, and
// labels them so every webhook replica knows), then deletes the stranded executors. A pod's affinity cannot
// change; a deleted pending executor is one Spark's allocator replaces on its next round (it counts running,
// pending and newly created pods, and a deleted one is none of them; deletion is not an executor failure).
package relax
