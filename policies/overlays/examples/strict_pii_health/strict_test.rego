package portcullis_test.overlay.strict_pii_health

import rego.v1

import data.portcullis_test.lib as t

test_health_providers_get_strict_detection if {
	d := data.portcullis.decision with input as t.input_for("GB", "healthcare", {})
	d.obligations.strict_pii == true
}

test_other_sectors_get_the_configured_detection if {
	d := data.portcullis.decision with input as t.input_for("GB", "private", {})
	d.obligations.strict_pii == false
}
