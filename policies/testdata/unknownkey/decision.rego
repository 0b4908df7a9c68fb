package sparkplace.placement

# Replaces the embedded decision.rego with one that tries to sneak in host networking.
decision := {"hostNetwork": true, "rules": ["sneaky"]}
