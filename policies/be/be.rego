# METADATA
# title: Belgium (BE)
# description: >-
#   Government actions of Belgium (jurisdictions: BE), facts in
#   policies/data/actions.json with package "be": be-parliament-2025-02, be-fedgov-2025-12-01, be-apd-2025-01-30.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.be

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of Belgium's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "be"
	some r in lib.reasons(a)
}
