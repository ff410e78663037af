package portcullis_test.overlay.kr_rrn_block

import rego.v1

import data.portcullis_test.lib as t

test_kr_rrn_blocked_everywhere if {
	d := data.portcullis.decision with input as t.input_for("KR", "private", {})
	every b in d.permitted_backends {
		d.pii_actions[b].KR_RRN == "block"
	}
	d.pii_actions["deepseek-self"]["*"] == "allow"
	d.pii_actions.openai["*"] == "pseudonymise"
}
