# METADATA
# title: Health providers - personal data looked for as strictly as the detector can
# description: >-
#   Example overlay. For principals in the healthcare sector, prompts are read for personal
#   data as strictly as the gateway's detector can: the name model reads the whole text, so a
#   patient's name typed in lower case is found, and a card-like or phone number inside code
#   is reported without a context word. Costs about 1.1-4.5x the detector's time on prose
#   (docs/benchmarks/pii.md). The gateway settings pii.ner_windows: false and
#   pii.quiet_in_code: false do the same for every request.
package portcullis.overlay.strict_pii_health

import rego.v1

obligations contains {"strict_pii": true} if {
	input.principal.sector == "healthcare"
}
