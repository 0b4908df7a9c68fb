# A module in a package of its own: the input schema applies here too, without METADATA.
package sparkplace.custom

is_driver if input.rol == "driver"
