# METADATA
# title: Japan (JP)
# description: >-
#   Government actions of Japan (jurisdictions: JP, JP-24, JP-31), facts in
#   policies/data/actions.json with package "jp": jp-gov-2025-02-06, jp-24-mie-2025-02-07, jp-31-tottori-2025-02.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.jp

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Japan's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "jp"
	some r in lib.reasons(a)
}
