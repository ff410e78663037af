package portcullis_test.nl

import rego.v1

import data.portcullis_test.lib as t

eu_info := {
	t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
	t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
}

test_civil_service_ban_hosted_only if {
	t.decide("NL", "government", {}) == t.expect(["azure-eu", "deepseek-self", "openai"], eu_info | {
		t.reason("nl-bzk-2025-02-06", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("nl-ap-2025-01-31", "hosted", "warn", ["deepseek-hosted"]),
	})
}
