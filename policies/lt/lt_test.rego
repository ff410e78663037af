package portcullis_test.lt

import rego.v1

import data.portcullis_test.lib as t

test_seimas_ban if {
	t.decide("LT", "legislature", {}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("lt-seimas-2025-02-12", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
		t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
	})
}
