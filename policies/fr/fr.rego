# METADATA
# title: France (FR)
# description: >-
#   Government actions of France (jurisdictions: FR), facts in
#   policies/data/actions.json with package "fr": fr-cnil-2025-01-30.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.fr

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of France's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "fr"
	some r in lib.reasons(a)
}
