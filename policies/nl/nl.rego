# METADATA
# title: Netherlands (NL)
# description: >-
#   Government actions of Netherlands (jurisdictions: NL), facts in
#   policies/data/actions.json with package "nl": nl-bzk-2025-02-06, nl-ap-2025-01-31.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.nl

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Netherlands's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "nl"
	some r in lib.reasons(a)
}
