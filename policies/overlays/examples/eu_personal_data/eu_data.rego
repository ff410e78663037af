# METADATA
# title: Personal data of EU principals stays in the EU or an adequate country
# description: >-
#   Example overlay. At the final phase (PII counted), when the request carries any personal
#   data entity, principals in an EU or EEA country may only use backends hosted in the EU/EEA
#   or in a country with an EU adequacy decision (adequacy.json). At the route phase (PII not
#   yet known) it denies nothing; the final decision narrows the backends.
package portcullis.overlay.eu_personal_data

import rego.v1

cfg := data.overlays.eu_personal_data.adequacy

eu_principal if input.principal.country in data.facts.regions.eu_members

eu_principal if input.principal.country in cfg.eea

has_personal_data if {
	input.phase == "final"
	some entity, n in input.pii.entities
	n > 0
	not entity in cfg.not_personal
}

allowed_place(b) if b.hosting_country in data.facts.regions.eu_members

allowed_place(b) if b.hosting_country in cfg.eea

allowed_place(b) if b.hosting_country in cfg.adequate

deny contains {
	"rule": "overlay.eu_personal_data",
	"message": "Personal data of principals in the EU may only go to backends hosted in the EU/EEA or an adequate country (GDPR Chapter V; organisation policy).",
	"backends": ids,
	"citation": cfg.citation,
} if {
	eu_principal
	has_personal_data
	ids := [b.id | some b in input.backends; not allowed_place(b)]
	count(ids) > 0
}
