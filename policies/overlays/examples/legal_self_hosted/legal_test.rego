package portcullis_test.overlay.legal_self_hosted

import rego.v1

import data.portcullis_test.lib as t

test_legal_team_only_self_hosted if {
	d := data.portcullis.decision with input as t.input_for("GB", "private", {"team": "legal"})
	d.permitted_backends == ["deepseek-self"]
	some r in d.reasons
	r.rule == "overlay.legal_self_hosted"
	r.backends == ["azure-eu", "deepseek-hosted", "openai"]
}

test_other_team_unaffected if {
	d := data.portcullis.decision with input as t.input_for("GB", "private", {"team": "sales"})
	d.permitted_backends == ["azure-eu", "deepseek-hosted", "deepseek-self", "openai"]
	d.reasons == []
}
