# Test overlay: a deny that wins over a jurisdiction's permit, a warning, and obligations.
package portcullis.overlay.no_weights

import rego.v1

deny contains {
	"rule": "overlay.no_weights",
	"message": "This organisation does not run DeepSeek weights.",
	"backends": [b.id | some b in input.backends; b.model_family == "deepseek"; b.self_hosted == true],
} if input.principal.sector == "government"

warn contains {"rule": "overlay.review", "message": "Quarterly review pending."} if true

obligations contains {"content_capture": true, "retention_class": "extended"} if input.principal.sector == "government"

obligations contains {"retention_class": "legal_hold"} if input.principal.team == "legal"
