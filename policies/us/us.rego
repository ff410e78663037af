# METADATA
# title: United States (US)
# description: >-
#   Government actions of United States (jurisdictions: US, US-AL, US-AR, US-GA, US-IA, US-KS, US-LA, US-NC, US-ND, US-NE, US-NV, US-NY, US-OK, US-OR, US-PA, US-SD, US-TN, US-TX, US-VA), facts in
#   policies/data/actions.json with package "us": us-navy-2025-01-24, us-disa-2025-01-28, us-house-cao-2025-01-30, us-nasa-2025-01-31, us-doc-2025-03, us-ndaa26-s1532-2025-12-18, us-ndaa26-s6604-2025-12-18, us-bill-no-deepseek-gov-devices-2025-02, us-bill-no-adversarial-ai-2025-06-25, us-tx-2025-01-31, us-ny-2025-02-10, us-va-2025-02-11, us-ia-2025-02-19, us-sd-2025-03, us-ok-2025-03-21, us-al-2025-03-26, us-tn-2025-03, us-ks-2025-04-08, us-la-2025, us-nd-2025-unverified, us-nc-2025-unverified, us-ne-2025-unverified, us-ar-2025-unverified, us-ga-2025-unverified, us-pa-2025-unverified, us-or-2025-unverified, us-nv-2025-unverified, us-tiktok-gov-devices-2022-12.
#   The logic is the shared library's (portcullis.lib); this package selects its actions, so a
#   jurisdiction can be reviewed, tested and overridden on its own.
package portcullis.jurisdiction.us

import rego.v1

import data.portcullis.lib

# METADATA
# title: Reasons of United States's actions
# description: deny / warn / info reasons, each naming the backends it reaches and citing the act.
reasons contains r if {
	some a in lib.applicable
	a.package == "us"
	some r in lib.reasons(a)
}
