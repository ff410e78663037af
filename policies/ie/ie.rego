# METADATA
# title: Ireland (IE)
# description: >-
#   Government actions of Ireland (jurisdictions: IE), facts in
#   policies/data/actions.json with package "ie": ie-dpc-2025-01-29.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.ie

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Ireland's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "ie"
	some r in lib.reasons(a)
}
