# METADATA
# title: Taiwan (TW)
# description: >-
#   Government actions of Taiwan (jurisdictions: TW), facts in
#   policies/data/actions.json with package "tw": tw-moda-2025-01-31, tw-ey-2025-02-03, tw-nsb-2025-11-16, tw-moi-rednote-2025-12-04.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.tw

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Taiwan's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "tw"
	some r in lib.reasons(a)
}
