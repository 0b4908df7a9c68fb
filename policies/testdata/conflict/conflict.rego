package sparkplace.placement

# Asks for a different capacity value than capacity.rego: a conflict at evaluation, not a silent winner.
node_selector["eks.amazonaws.com/capacityType"] := "RESERVED" if role == "driver"
