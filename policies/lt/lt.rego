# METADATA
# title: Lithuania (LT)
# description: >-
#   Government actions of Lithuania (jurisdictions: LT), facts in
#   policies/data/actions.json with package "lt": lt-seimas-2025-02-12.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.lt

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Lithuania's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "lt"
	some r in lib.reasons(a)
}
