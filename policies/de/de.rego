# METADATA
# title: Germany (DE)
# description: >-
#   Government actions of Germany (jurisdictions: DE, DE-BE), facts in
#   policies/data/actions.json with package "de": de-be-blnbdi-2025-06-27, de-bfdi-unverified.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.de

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Germany's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "de"
	some r in lib.reasons(a)
}
