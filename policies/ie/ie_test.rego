package portcullis_test.ie

import rego.v1

import data.portcullis_test.lib as t

test_information_request_is_information if {
	t.decide("IE", "private", {}) == t.expect(t.all_ids, {
		t.reason("ie-dpc-2025-01-29", "hosted", "info", ["deepseek-hosted"]),
		t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
		t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
	})
}
