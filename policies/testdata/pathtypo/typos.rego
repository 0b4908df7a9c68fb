# Typos in input and config paths: each is a compile error naming this file and line.
package sparkplace.placement

rules contains "custom.typo-in-input" if input.driver.zonee == "us-east-1a"

rules contains "custom.typo-in-config" if cfg.zone.topologyKy
