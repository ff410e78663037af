package portcullis_test.cz

import rego.v1

import data.portcullis_test.lib as t

eu_info := {
	t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
	t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
}

test_state_administration_ban if {
	t.decide("CZ", "government", {}) == t.expect(["azure-eu", "openai"], eu_info | {
		t.reason("cz-gov-2025-07-09", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("cz-gov-2025-07-09", "weights_cautious", "deny", ["deepseek-self"]),
		t.reason("cz-nukib-2025-07-10", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_statutory_warning_does_not_deny_operators if {
	t.decide("CZ", "critical_infrastructure", {}) == t.expect(t.all_ids, eu_info | {
		t.reason("cz-nukib-2025-07-10", "hosted", "warn", ["deepseek-hosted"]),
	})
}
