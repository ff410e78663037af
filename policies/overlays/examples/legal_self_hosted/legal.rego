# METADATA
# title: Legal team - self-hosted backends only
# description: >-
#   Example overlay. Principals of the team "legal" may only use self-hosted backends: every
#   candidate that is not self-hosted is denied for them. Teams are listed in data (team.json).
package portcullis.overlay.legal_self_hosted

import rego.v1

deny contains {
	"rule": "overlay.legal_self_hosted",
	"message": "The legal team may only use self-hosted backends (organisation policy).",
	"backends": ids,
	"citation": data.overlays.legal_self_hosted.team.citation,
} if {
	input.principal.team in data.overlays.legal_self_hosted.team.teams
	ids := [b.id | some b in input.backends; not b.self_hosted == true]
	count(ids) > 0
}
