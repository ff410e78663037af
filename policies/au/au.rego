# METADATA
# title: Australia (AU)
# description: >-
#   Government actions of Australia (jurisdictions: AU, AU-NSW, AU-QLD, AU-SA, AU-WA), facts in
#   policies/data/actions.json with package "au": au-homeaffairs-2025-02-04, au-nsw-dcs-2025-01-30, au-sa-2025-02-05, au-qld-2025-02, au-wa-2025-02, au-tiktok-2023-04.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.au

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Australia's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "au"
	some r in lib.reasons(a)
}
