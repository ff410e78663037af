# METADATA
# title: Canada (CA)
# description: >-
#   Government actions of Canada (jurisdictions: CA), facts in
#   policies/data/actions.json with package "ca": ca-tbs-2025-02-06, ca-tiktok-2023-02-28.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.ca

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Canada's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "ca"
	some r in lib.reasons(a)
}
