# METADATA
# title: India (IN)
# description: >-
#   Government actions of India (jurisdictions: IN), facts in
#   policies/data/actions.json with package "in": in-mof-doe-2025-01-29.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.in

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of India's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "in"
	some r in lib.reasons(a)
}
