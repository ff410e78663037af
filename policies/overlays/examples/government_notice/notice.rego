# METADATA
# title: Government staff - a usage notice as a system prompt
# description: >-
#   Example overlay. Requests of principals in the government sector get the configured system
#   prompt "government_notice" (its text lives in the gateway's configuration, system_prompts,
#   never in policy). The gateway adds it in front of the caller's messages and screens the
#   answer for its canary.
package portcullis.overlay.government_notice

import rego.v1

obligations contains {"system_prompt": "government_notice"} if {
	input.principal.sector == "government"
}
