# METADATA
# title: Italy (IT)
# description: >-
#   Government actions of Italy (jurisdictions: IT), facts in
#   policies/data/actions.json with package "it": it-garante-2025-01-30, it-garante-2025-05-isp-letter, it-agcm-2025-06, it-garante-chatgpt-2023-03-30.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.it

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Italy's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "it"
	some r in lib.reasons(a)
}
