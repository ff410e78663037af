package portcullis_test.lu

import rego.v1

import data.portcullis_test.lib as t

test_warning_reaches_weights_but_does_not_deny if {
	t.decide("LU", "private", {}) == t.expect(t.all_ids, {
		t.reason("lu-cnpd-2025", "hosted", "warn", ["deepseek-hosted"]),
		t.reason("lu-cnpd-2025", "weights", "warn", ["deepseek-self"]),
		t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
		t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
	})
}
