package portcullis_test.overlay.redact_new_answers

import rego.v1

import data.portcullis_test.lib as t

test_government_staff_get_new_personal_data_redacted if {
	d := data.portcullis.decision with input as t.input_for("GB", "government", {})
	d.obligations.redact_new_pii == true
}

test_private_sector_answers_are_only_counted if {
	d := data.portcullis.decision with input as t.input_for("GB", "private", {})
	d.obligations.redact_new_pii == false
}
