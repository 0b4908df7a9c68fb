package sparkplace.placement

# A platform team's own isolation: Spark nodes labelled workload=batch, no taint.
node_selector.workload := "batch" if node_bound

rules contains "isolation.batch-nodes" if node_bound
