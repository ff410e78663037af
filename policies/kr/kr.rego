# METADATA
# title: South Korea (KR)
# description: >-
#   Government actions of South Korea (jurisdictions: KR), facts in
#   policies/data/actions.json with package "kr": kr-mois-2025-02-04, kr-ministries-2025-02-05, kr-ministries-2025-02-06, kr-moe-2025-02, kr-khnp-2025-02-01, kr-pipc-2025-02-15, kr-pipc-2025-04-24.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.kr

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of South Korea's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "kr"
	some r in lib.reasons(a)
}
