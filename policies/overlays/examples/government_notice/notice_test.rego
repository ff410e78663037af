package portcullis_test.overlay.government_notice

import rego.v1

import data.portcullis_test.lib as t

test_government_staff_get_the_notice if {
	d := data.portcullis.decision with input as t.input_for("GB", "government", {})
	d.obligations.system_prompts == ["government_notice"]
	d.obligations.content_capture == false
}

test_private_sector_gets_none if {
	d := data.portcullis.decision with input as t.input_for("GB", "private", {})
	d.obligations.system_prompts == []
}

test_the_notice_is_asked_for_under_a_denial_too if {
	# The decision's obligations do not depend on which backends are permitted.
	d := data.portcullis.decision with input as t.input_for("AU", "government", {})
	d.obligations.system_prompts == ["government_notice"]
}
