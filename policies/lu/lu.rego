# METADATA
# title: Luxembourg (LU)
# description: >-
#   Government actions of Luxembourg (jurisdictions: LU), facts in
#   policies/data/actions.json with package "lu": lu-cnpd-2025.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.lu

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Luxembourg's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "lu"
	some r in lib.reasons(a)
}
