package portcullis_test.overlay.legal_hold

import rego.v1

import data.portcullis_test.lib as t

test_a_held_principal_is_captured_and_kept if {
	d := data.portcullis.decision with input as t.input_for("GB", "private", {"tags": ["legal-hold"]})
	d.obligations.content_capture == true
	d.obligations.retention_class == "legal_hold"
}

test_others_are_not if {
	d := data.portcullis.decision with input as t.input_for("GB", "private", {"tags": ["sales"]})
	d.obligations.content_capture == false
	d.obligations.retention_class == "standard"
}
