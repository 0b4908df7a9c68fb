# A policy that adds a denial for Fargate pods: the embedded Fargate tests fail over it.
package sparkplace.placement

deny contains "fargate is closed for maintenance" if profile == "fargate"
