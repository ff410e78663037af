# METADATA
# title: European Union (EU)
# description: >-
#   Government actions of European Union (jurisdictions: EU), facts in
#   policies/data/actions.json with package "eu": eu-edpb-2025-02-11, eu-edpb-chatgpt-taskforce-2023-04-13, eu-commission-tiktok-2023-02-23.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.eu

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of European Union's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "eu"
	some r in lib.reasons(a)
}
