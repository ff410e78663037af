package portcullis_test.be

import rego.v1

import data.portcullis_test.lib as t

eu_info := {
	t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
	t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
}

test_parliament_block if {
	t.decide("BE", "legislature", {}) == t.expect(["azure-eu", "deepseek-self", "openai"], eu_info | {
		t.reason("be-parliament-2025-02", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("be-apd-2025-01-30", "hosted", "info", ["deepseek-hosted"]),
	})
}

test_federal_circular_from_december if {
	t.decide("BE", "government", {"now": t.at("2025-12-01")}) == t.expect(["azure-eu", "deepseek-self", "openai"], eu_info | {
		t.reason("be-parliament-2025-02", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("be-fedgov-2025-12-01", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("be-apd-2025-01-30", "hosted", "info", ["deepseek-hosted"]),
	})
}
