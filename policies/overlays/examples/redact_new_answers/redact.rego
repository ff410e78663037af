# METADATA
# title: Government staff - personal data an answer brings is redacted
# description: >-
#   Example overlay. For principals in the government sector, personal data in an answer that
#   the prompt did not hold (an e-mail address or phone number the model recalls or makes up) is
#   replaced by its type, [EMAIL_ADDRESS], before the caller sees it - streamed answers too,
#   screened as they go - rather than only counted in the audit record (the default). The
#   gateway setting pii.output_new_pii: redact does the same for every request.
package portcullis.overlay.redact_new_answers

import rego.v1

obligations contains {"redact_new_pii": true} if {
	input.principal.sector == "government"
}
