package sparkplace.placement

# A missing closing brace: the engine must report this file and line.
driver_zone := input.driver.zone if {
	input.driver.zone != ""

rules contains "zone.broken" if true
