package portcullis_test.eu

import rego.v1

import data.portcullis_test.lib as t

test_edpb_coordination_is_information_for_member_states if {
	t.decide("SE", "government", {}) == t.expect(t.all_ids, {
		t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
		t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
	})
}

test_not_a_member_state if {
	t.decide("NO", "government", {}) == t.expect(t.all_ids, set())
}
