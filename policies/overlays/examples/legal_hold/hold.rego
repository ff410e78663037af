# METADATA
# title: Legal hold - capture content and keep the record
# description: >-
#   Example overlay. Requests of principals tagged "legal-hold" (a matter under litigation hold)
#   are captured: the gateway seals the request and the answer in the content vault when
#   audit.content_capture is on, and their audit records take the legal_hold retention class.
package portcullis.overlay.legal_hold

import rego.v1

obligations contains {"content_capture": true, "retention_class": "legal_hold"} if {
	"legal-hold" in input.principal.tags
}
