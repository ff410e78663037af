# METADATA
# title: Czechia (CZ)
# description: >-
#   Government actions of Czechia (jurisdictions: CZ), facts in
#   policies/data/actions.json with package "cz": cz-gov-2025-07-09, cz-nukib-2025-07-10.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.cz

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Czechia's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "cz"
	some r in lib.reasons(a)
}
